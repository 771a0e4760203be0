//! The enrolment output folder: one QR image per person under `qr/`, a journal of every token
//! written (`journal.jsonl`) and the manifests for enrolment letters (`manifest.csv`,
//! `manifest.json`). Crash-safe and resumable: a person's QR image is complete and durable
//! before their journal line is appended and synced, so after a crash the journal names only
//! people whose image is on disk, and a rerun with the same folder sees who is done. The
//! journal and manifests never hold an `otpauth` URI or seed; only the images do (mode 0600 in a
//! 0700 folder).

use rampart_core::qr::{self, QrError};
use rampart_core::text::{csv_cell, printable};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

const JOURNAL: &str = "journal.jsonl";
const QR_DIR: &str = "qr";
const MANIFEST_CSV: &str = "manifest.csv";
const MANIFEST_JSON: &str = "manifest.json";
/// Temporary files start with this; a crash can leave one behind, and `open` removes them.
const TMP_PREFIX: &str = ".rampart-tmp-";
/// Longest sanitised file-name stem; usernames may be up to 256 characters, file names 255 bytes.
const MAX_STEM: usize = 100;

/// One issued token, as the journal and manifests record it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Entry {
    pub(crate) username: String,
    pub(crate) display_name: String,
    pub(crate) email: Option<String>,
    pub(crate) group: Option<String>,
    pub(crate) token_id: String,
    /// Unix seconds.
    pub(crate) issued_at: i64,
    /// Relative to the folder, e.g. `qr/alice.png`; chosen by [`OutputDir::write_qr_and_record`].
    pub(crate) qr_file: String,
}

/// Why the output folder cannot be used. Paths are relative to the folder, which the caller
/// names.
#[derive(Debug, thiserror::Error)]
pub(crate) enum OutputError {
    /// Creating the folder or `qr/` failed.
    #[error("cannot create the folder {what}: {source}")]
    CreateDir {
        what: String,
        #[source]
        source: io::Error,
    },
    /// Reading the journal failed.
    #[error("cannot read {what}: {source}")]
    Read {
        what: String,
        #[source]
        source: io::Error,
    },
    /// A journal line other than the last cannot be read: the file was edited or damaged.
    #[error("{JOURNAL} line {line} is not a valid entry (column {column}); it was edited or damaged")]
    CorruptJournal { line: usize, column: usize },
    /// Writing, syncing or renaming a file failed.
    #[error("cannot write {what}: {source}")]
    Write {
        what: String,
        #[source]
        source: io::Error,
    },
    /// The QR image could not be made (the URI itself is never shown).
    #[error("cannot make the QR image for {username}: {source}")]
    Qr {
        username: String,
        #[source]
        source: QrError,
    },
    /// An entry's `issued_at` is outside the range of dates.
    #[error("the issue time of {username} ({issued_at}) is not a valid date")]
    IssuedAt { username: String, issued_at: i64 },
    /// A file or folder the output is kept in is a symbolic link: following it could append to
    /// or cut another file.
    #[error(
        "refusing {what}: it is a symbolic link (it could point at another file); remove it or choose another folder"
    )]
    Symlink { what: String },
    /// The journal is not a regular file.
    #[error("refusing {JOURNAL}: it is not a regular file")]
    NotAFile,
    /// Encoding a journal line or manifest failed.
    #[error("cannot encode {what}: {message}")]
    Encode { what: &'static str, message: String },
}

/// An open output folder and what its journal says was written.
#[derive(Debug)]
pub(crate) struct OutputDir {
    dir: PathBuf,
    journal: File,
    /// Length of the journal's complete lines; a failed append is cut back to it.
    journal_len: u64,
    /// The latest entry per username (sorted, as the manifests want).
    latest: BTreeMap<String, Entry>,
    /// Which username each QR file in the journal belongs to.
    qr_owners: HashMap<String, String>,
}

impl OutputDir {
    /// Creates the folder and `qr/` (0700 on unix) if needed, removes temporary files a crash
    /// left behind and loads `journal.jsonl`. A torn last journal line (a crash mid-append) is
    /// ignored and cut off; an unreadable line before it is an error.
    pub(crate) fn open(path: impl AsRef<Path>) -> Result<Self, OutputError> {
        let dir = path.as_ref().to_owned();
        create_private_dir(&dir).map_err(|source| OutputError::CreateDir {
            what: ".".into(),
            source,
        })?;
        refuse_symlink(&dir.join(QR_DIR), &format!("{QR_DIR}/"))?;
        create_private_dir(&dir.join(QR_DIR)).map_err(|source| OutputError::CreateDir {
            what: format!("{QR_DIR}/"),
            source,
        })?;
        for sub in [dir.clone(), dir.join(QR_DIR)] {
            remove_temporary_files(&sub).map_err(|source| OutputError::Write {
                what: "temporary files".into(),
                source,
            })?;
        }

        let read_err = |source| OutputError::Read {
            what: JOURNAL.into(),
            source,
        };
        let mut journal = open_journal(&dir.join(JOURNAL))?;
        let mut content = Vec::new();
        journal.read_to_end(&mut content).map_err(read_err)?;
        let loaded = load_journal(&content)?;

        let write_err = |source| OutputError::Write {
            what: JOURNAL.into(),
            source,
        };
        let mut journal_len = len_u64(content.len());
        if loaded.keep < content.len() {
            journal.set_len(len_u64(loaded.keep)).map_err(write_err)?;
            journal_len = len_u64(loaded.keep);
        }
        if loaded.needs_newline {
            journal.write_all(b"\n").map_err(write_err)?;
            journal_len += 1;
        }
        journal.sync_all().map_err(write_err)?;
        sync_dir(&dir).map_err(write_err)?;

        let mut out = Self {
            dir,
            journal,
            journal_len,
            latest: BTreeMap::new(),
            qr_owners: HashMap::new(),
        };
        for entry in loaded.entries {
            out.remember(entry);
        }
        Ok(out)
    }

    /// The latest journal entry for `username`.
    pub(crate) fn entry(&self, username: &str) -> Option<&Entry> {
        self.latest.get(username)
    }

    /// Writes one person's QR image, then records them in the journal (see
    /// [`OutputDir::write_qr_and_record_all`]).
    #[cfg(test)]
    pub(crate) fn write_qr_and_record(&mut self, entry: Entry, otpauth_uri: &str) -> Result<(), OutputError> {
        self.write_qr_and_record_all(vec![(entry, otpauth_uri)])
    }

    /// Writes each person's QR image (atomically, 0600), makes the images durable, then
    /// appends their journal lines with one sync — so a crash leaves, for each person, either
    /// nothing recorded or a complete image and record. Sets each entry's `qr_file`.
    pub(crate) fn write_qr_and_record_all(&mut self, items: Vec<(Entry, &str)>) -> Result<(), OutputError> {
        let mut entries = Vec::with_capacity(items.len());
        for (mut entry, otpauth_uri) in items {
            entry.qr_file = self.qr_file_for(&entry.username);
            let image = qr::png(otpauth_uri).map_err(|source| OutputError::Qr {
                username: entry.username.clone(),
                source,
            })?;
            write_atomically(&self.dir.join(&entry.qr_file), &image).map_err(|source| OutputError::Write {
                what: entry.qr_file.clone(),
                source,
            })?;
            // Later people in this batch must not pick the same file name.
            self.remember(entry.clone());
            entries.push(entry);
        }
        if entries.is_empty() {
            return Ok(());
        }
        sync_dir(&self.dir.join(QR_DIR)).map_err(|source| OutputError::Write {
            what: QR_DIR.into(),
            source,
        })?;
        let mut lines = Vec::new();
        for entry in &entries {
            lines.extend(serde_json::to_vec(entry).map_err(|e| encode_error(JOURNAL, e))?);
            lines.push(b'\n');
        }
        if let Err(source) = self.journal.write_all(&lines).and_then(|()| self.journal.sync_data()) {
            // Cut a partial line off so the next append does not glue onto it; if this fails
            // too, the next `open` still treats it as a torn last line.
            // The in-memory view now runs ahead of the journal; callers stop at this error.
            let _ = self.journal.set_len(self.journal_len);
            return Err(OutputError::Write {
                what: JOURNAL.into(),
                source,
            });
        }
        self.journal_len += len_u64(lines.len());
        Ok(())
    }

    pub(crate) fn finish(&self) -> Result<(), OutputError> {
        let mut csv = csv::Writer::from_writer(Vec::new());
        csv.write_record([
            "username",
            "display_name",
            "email",
            "group",
            "token_id",
            "issued_at",
            "qr_file",
        ])
        .map_err(|e| encode_error(MANIFEST_CSV, e))?;
        for entry in self.latest.values() {
            let issued_at = jiff::Timestamp::from_second(entry.issued_at).map_err(|_| OutputError::IssuedAt {
                username: entry.username.clone(),
                issued_at: entry.issued_at,
            })?;
            // Directory values must stay text: a display name like `=HYPERLINK(…)` never becomes a
            // formula in a spreadsheet, and control characters (escape sequences) are written out
            // as `\u{…}`, so neither `cat manifest.csv` nor a printed letter obeys them.
            csv.write_record(
                [
                    entry.username.as_str(),
                    entry.display_name.as_str(),
                    entry.email.as_deref().unwrap_or_default(),
                    entry.group.as_deref().unwrap_or_default(),
                    entry.token_id.as_str(),
                    issued_at.to_string().as_str(),
                    entry.qr_file.as_str(),
                ]
                .map(|cell| csv_cell(&printable(cell)).into_owned()),
            )
            .map_err(|e| encode_error(MANIFEST_CSV, e))?;
        }
        let csv = csv.into_inner().map_err(|e| encode_error(MANIFEST_CSV, e))?;

        let entries: Vec<&Entry> = self.latest.values().collect();
        let mut json = serde_json::to_vec_pretty(&entries).map_err(|e| encode_error(MANIFEST_JSON, e))?;
        json.push(b'\n');

        for (name, bytes) in [(MANIFEST_CSV, csv), (MANIFEST_JSON, json)] {
            write_atomically(&self.dir.join(name), &bytes).map_err(|source| OutputError::Write {
                what: name.into(),
                source,
            })?;
        }
        Ok(())
    }

    fn remember(&mut self, entry: Entry) {
        self.qr_owners.insert(entry.qr_file.clone(), entry.username.clone());
        self.latest.insert(entry.username.clone(), entry);
    }

    fn qr_file_for(&self, username: &str) -> String {
        if let Some(earlier) = self.latest.get(username)
            && is_safe_qr_file(&earlier.qr_file)
        {
            return earlier.qr_file.clone();
        }
        let stem = sanitise(username);
        let taken = |file: &str| self.qr_owners.get(file).is_some_and(|owner| owner != username);
        let mut file = format!("{QR_DIR}/{stem}.png");
        let mut n = 2_u32;
        while taken(&file) {
            file = format!("{QR_DIR}/{stem}-{n}.png");
            n += 1;
        }
        file
    }
}

struct LoadedJournal {
    entries: Vec<Entry>,
    /// Bytes to keep: everything before a torn last line.
    keep: usize,
    /// The last kept line is complete JSON but lost its newline.
    needs_newline: bool,
}

fn load_journal(content: &[u8]) -> Result<LoadedJournal, OutputError> {
    let mut entries = Vec::new();
    let mut start = 0;
    let lines: Vec<&[u8]> = content.split(|b| *b == b'\n').collect();
    let last_text = lines.iter().rposition(|l| !l.trim_ascii().is_empty());
    for (index, line) in lines.iter().enumerate() {
        let line_start = start;
        start += line.len() + 1;
        if line.trim_ascii().is_empty() {
            continue;
        }
        match serde_json::from_slice::<Entry>(line) {
            Ok(entry) => entries.push(entry),
            Err(_) if Some(index) == last_text => {
                return Ok(LoadedJournal {
                    entries,
                    keep: line_start,
                    needs_newline: false,
                });
            }
            Err(e) => {
                return Err(OutputError::CorruptJournal {
                    line: index + 1,
                    column: e.column(),
                });
            }
        }
    }
    Ok(LoadedJournal {
        entries,
        keep: content.len(),
        needs_newline: !content.is_empty() && !content.ends_with(b"\n"),
    })
}

/// A usable QR file name for `username`: `[a-z0-9._-]` kept (ASCII upper case lowered), every
/// other character replaced by `_`, no leading dot, at most [`MAX_STEM`] characters.
fn sanitise(username: &str) -> String {
    let mut stem: String = username
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .take(MAX_STEM)
        .collect();
    if stem.starts_with('.') {
        stem.replace_range(..1, "_");
    }
    if stem.is_empty() {
        stem.push('_');
    }
    stem
}

/// Whether a journal's `qr_file` is one this module could have chosen, so reusing it cannot
/// write outside `qr/`.
fn is_safe_qr_file(file: &str) -> bool {
    file.strip_prefix("qr/")
        .and_then(|name| name.strip_suffix(".png"))
        .is_some_and(|stem| {
            !stem.is_empty()
                && !stem.starts_with('.')
                && stem
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'))
        })
}

fn create_private_dir(path: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(path)
}

/// Opens (creating, 0600) the journal for reading and appending without following a symbolic
/// link in its place: a link planted there could otherwise have another file read, appended to
/// or cut at the "torn" last line.
fn open_journal(path: &Path) -> Result<File, OutputError> {
    refuse_symlink(path, JOURNAL)?;
    let journal = journal_options().open(path).map_err(|source| {
        if path.is_symlink() {
            OutputError::Symlink { what: JOURNAL.into() }
        } else {
            OutputError::Read {
                what: JOURNAL.into(),
                source,
            }
        }
    })?;
    let is_file = journal.metadata().map_err(|source| OutputError::Read {
        what: JOURNAL.into(),
        source,
    })?;
    if !is_file.is_file() {
        return Err(OutputError::NotAFile);
    }
    Ok(journal)
}

/// Read, append, create with mode 0600, and (so that a link appearing after the check in
/// [`open_journal`] is refused too) never through a symbolic link.
fn journal_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    options.read(true).append(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
        options.custom_flags(i32::try_from(rustix::fs::OFlags::NOFOLLOW.bits()).unwrap_or(0));
    }
    options
}

/// Refuses `path` when it is a symbolic link (a missing path is fine).
fn refuse_symlink(path: &Path, what: &str) -> Result<(), OutputError> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => Err(OutputError::Symlink { what: what.to_owned() }),
        _ => Ok(()),
    }
}

fn remove_temporary_files(dir: &Path) -> io::Result<()> {
    for item in fs::read_dir(dir)? {
        let item = item?;
        if item.file_name().to_string_lossy().starts_with(TMP_PREFIX) && item.file_type()?.is_file() {
            fs::remove_file(item.path())?;
        }
    }
    Ok(())
}

/// Temporary file in the same folder (mode 0600), synced, renamed over `path`; the caller
/// syncs the folder.
fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut builder = tempfile::Builder::new();
    builder.prefix(TMP_PREFIX);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(fs::Permissions::from_mode(0o600));
    }
    let mut tmp = builder.tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Makes renames and new files in `dir` durable (a no-op where folders cannot be synced).
fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

fn encode_error(what: &'static str, error: impl std::fmt::Display) -> OutputError {
    OutputError::Encode {
        what,
        message: error.to_string(),
    }
}

fn len_u64(len: usize) -> u64 {
    u64::try_from(len).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    const SECRET: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";

    fn uri(username: &str) -> String {
        format!("otpauth://totp/Rampart:{username}?secret={SECRET}&issuer=Rampart")
    }

    fn entry(username: &str, token_id: &str, issued_at: i64) -> Entry {
        Entry {
            username: username.into(),
            display_name: format!("{username} display"),
            email: Some(format!("{username}@example.org")),
            group: None,
            token_id: token_id.into(),
            issued_at,
            qr_file: String::new(),
        }
    }

    fn write(out: &mut OutputDir, username: &str, token_id: &str) {
        out.write_qr_and_record(entry(username, token_id, 1_700_000_000), &uri(username))
            .unwrap();
    }

    fn files_under(dir: &Path) -> Vec<String> {
        let mut names = Vec::new();
        for sub in ["", "qr"] {
            for item in fs::read_dir(dir.join(sub)).unwrap() {
                let item = item.unwrap();
                if item.file_type().unwrap().is_file() {
                    names.push(Path::new(sub).join(item.file_name()).to_string_lossy().into_owned());
                }
            }
        }
        names.sort();
        names
    }

    #[test]
    fn round_trip_writes_images_journal_and_manifests() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("letters");
        let mut out = OutputDir::open(&dir).unwrap();
        assert!(out.entry("bob").is_none());
        write(&mut out, "bob", "t-bob");
        let mut alice = entry("alice", "t-alice", 1_700_000_000);
        alice.group = Some("staff, \"ops\"".into());
        alice.email = None;
        out.write_qr_and_record(alice, &uri("alice")).unwrap();
        out.finish().unwrap();

        assert_eq!(out.entry("bob").unwrap().qr_file, "qr/bob.png");
        assert_eq!(
            files_under(&dir),
            [
                "journal.jsonl",
                "manifest.csv",
                "manifest.json",
                "qr/alice.png",
                "qr/bob.png"
            ]
        );
        assert!(fs::read(dir.join("qr/alice.png")).unwrap().starts_with(b"\x89PNG"));
        assert_eq!(
            fs::read_to_string(dir.join("manifest.csv")).unwrap(),
            "username,display_name,email,group,token_id,issued_at,qr_file\n\
             alice,alice display,,\"staff, \"\"ops\"\"\",t-alice,2023-11-14T22:13:20Z,qr/alice.png\n\
             bob,bob display,bob@example.org,,t-bob,2023-11-14T22:13:20Z,qr/bob.png\n"
        );
        let json: Vec<Entry> = serde_json::from_slice(&fs::read(dir.join("manifest.json")).unwrap()).unwrap();
        assert_eq!(
            json.iter().map(|e| e.username.as_str()).collect::<Vec<_>>(),
            ["alice", "bob"]
        );
        assert_eq!(&json[1], out.entry("bob").unwrap());

        for name in ["journal.jsonl", "manifest.csv", "manifest.json"] {
            let text = fs::read_to_string(dir.join(name)).unwrap();
            assert!(!text.contains(SECRET) && !text.contains("otpauth"), "{name}");
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&dir), 0o700);
            assert_eq!(mode(&dir.join("qr")), 0o700);
            for name in files_under(&dir) {
                assert_eq!(mode(&dir.join(&name)), 0o600, "{name}");
            }
        }
    }

    /// A display name from the directory used to reach the manifest as is, so a spreadsheet
    /// opening `manifest.csv` ran it as a formula.
    #[test]
    fn manifest_cells_never_start_a_formula() {
        let tmp = tempfile::tempdir().unwrap();
        let mut out = OutputDir::open(tmp.path()).unwrap();
        let mut mallory = entry("mallory", "t-m", 1_700_000_000);
        mallory.display_name = "=HYPERLINK(\"http://x\",\"y\")".into();
        mallory.email = Some("@evil".into());
        mallory.group = Some("-1+2".into());
        out.write_qr_and_record(mallory, &uri("mallory")).unwrap();
        let mut eve = entry("eve", "t-e", 1_700_000_000);
        eve.display_name = "\u{1b}[2JEve\u{7}".into();
        out.write_qr_and_record(eve, &uri("eve")).unwrap();
        out.finish().unwrap();
        let csv = fs::read_to_string(tmp.path().join("manifest.csv")).unwrap();
        let row = csv.lines().find(|l| l.starts_with("mallory,")).unwrap();
        assert!(
            row.starts_with("mallory,\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\",'@evil,'-1+2,t-m,"),
            "{row}"
        );
        let row = csv.lines().find(|l| l.starts_with("eve,")).unwrap();
        assert!(row.starts_with("eve,\\u{1b}[2JEve\\u{7},"), "{row}");
        let json: Vec<Entry> = serde_json::from_slice(&fs::read(tmp.path().join("manifest.json")).unwrap()).unwrap();
        let display = |user: &str| json.iter().find(|e| e.username == user).map(|e| e.display_name.clone());
        assert_eq!(
            display("mallory").as_deref(),
            Some("=HYPERLINK(\"http://x\",\"y\")"),
            "JSON keeps the value"
        );
        assert_eq!(display("eve").as_deref(), Some("\u{1b}[2JEve\u{7}"));
    }

    /// The journal used to be opened through whatever stood at its name, so a symbolic link
    /// planted there had another file read, appended to, and cut back at its "torn" last line.
    #[cfg(unix)]
    #[test]
    fn a_symlink_in_place_of_the_journal_is_refused_and_its_target_untouched() {
        let tmp = tempfile::tempdir().unwrap();
        let victim = tmp.path().join("victim.txt");
        let original = "precious data with no trailing newline";
        fs::write(&victim, original).unwrap();
        let dir = tmp.path().join("letters");
        fs::create_dir(&dir).unwrap();
        std::os::unix::fs::symlink(&victim, dir.join(JOURNAL)).unwrap();
        let err = OutputDir::open(&dir).unwrap_err();
        assert!(matches!(err, OutputError::Symlink { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            "refusing journal.jsonl: it is a symbolic link (it could point at another file); remove it or choose \
             another folder"
        );
        assert_eq!(fs::read_to_string(&victim).unwrap(), original);

        // A dangling link (to a file that would be created elsewhere) is refused too.
        fs::remove_file(dir.join(JOURNAL)).unwrap();
        std::os::unix::fs::symlink(tmp.path().join("elsewhere"), dir.join(JOURNAL)).unwrap();
        assert!(matches!(OutputDir::open(&dir), Err(OutputError::Symlink { .. })));
        assert!(!tmp.path().join("elsewhere").exists());

        // And the link is refused by the open itself, not only by the check before it.
        fs::remove_file(dir.join(JOURNAL)).unwrap();
        std::os::unix::fs::symlink(&victim, dir.join(JOURNAL)).unwrap();
        assert!(journal_options().open(dir.join(JOURNAL)).is_err());
        assert_eq!(fs::read_to_string(&victim).unwrap(), original);
    }

    #[test]
    fn reopening_sees_earlier_entries_and_latest_wins() {
        let tmp = tempfile::tempdir().unwrap();
        let mut out = OutputDir::open(tmp.path()).unwrap();
        write(&mut out, "alice", "t1");
        write(&mut out, "bob", "t2");
        drop(out);

        let mut out = OutputDir::open(tmp.path()).unwrap();
        assert_eq!(out.entry("alice").unwrap().token_id, "t1");
        assert_eq!(out.entry("bob").unwrap().token_id, "t2");
        // A reissue overwrites the person's own image and replaces their manifest row.
        write(&mut out, "alice", "t3");
        assert_eq!(out.entry("alice").unwrap().qr_file, "qr/alice.png");
        out.finish().unwrap();
        drop(out);

        let out = OutputDir::open(tmp.path()).unwrap();
        assert_eq!(out.entry("alice").unwrap().token_id, "t3");
        let csv = fs::read_to_string(tmp.path().join("manifest.csv")).unwrap();
        assert_eq!(csv.lines().count(), 3, "{csv}");
        assert!(csv.contains(",t3,") && !csv.contains(",t1,"));
        let journal = fs::read_to_string(tmp.path().join(JOURNAL)).unwrap();
        assert_eq!(journal.lines().count(), 3);
    }

    #[test]
    fn torn_last_journal_line_is_ignored_and_cut_off() {
        let tmp = tempfile::tempdir().unwrap();
        let mut out = OutputDir::open(tmp.path()).unwrap();
        write(&mut out, "alice", "t1");
        drop(out);
        let journal = tmp.path().join(JOURNAL);
        let mut file = OpenOptions::new().append(true).open(&journal).unwrap();
        file.write_all(br#"{"username":"bob","display_na"#).unwrap();
        drop(file);

        let mut out = OutputDir::open(tmp.path()).unwrap();
        assert!(out.entry("alice").is_some());
        assert!(out.entry("bob").is_none());
        // The next append starts on a line of its own, so later opens read everything.
        write(&mut out, "bob", "t2");
        drop(out);
        let out = OutputDir::open(tmp.path()).unwrap();
        assert_eq!(out.entry("bob").unwrap().token_id, "t2");
        assert_eq!(fs::read_to_string(&journal).unwrap().lines().count(), 2);
    }

    #[test]
    fn complete_last_line_without_newline_is_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let mut out = OutputDir::open(tmp.path()).unwrap();
        write(&mut out, "alice", "t1");
        drop(out);
        let journal = tmp.path().join(JOURNAL);
        let text = fs::read_to_string(&journal).unwrap();
        fs::write(&journal, text.trim_end()).unwrap();

        let mut out = OutputDir::open(tmp.path()).unwrap();
        assert!(out.entry("alice").is_some());
        write(&mut out, "bob", "t2");
        drop(out);
        let out = OutputDir::open(tmp.path()).unwrap();
        assert!(out.entry("alice").is_some() && out.entry("bob").is_some());
    }

    #[test]
    fn unreadable_middle_line_is_an_error_naming_it() {
        let tmp = tempfile::tempdir().unwrap();
        let mut out = OutputDir::open(tmp.path()).unwrap();
        write(&mut out, "alice", "t1");
        write(&mut out, "bob", "t2");
        drop(out);
        let journal = tmp.path().join(JOURNAL);
        let text = fs::read_to_string(&journal).unwrap();
        let mut lines: Vec<&str> = text.lines().collect();
        lines.insert(1, "{not json");
        fs::write(&journal, lines.join("\n") + "\n").unwrap();

        let err = OutputDir::open(tmp.path()).unwrap_err();
        assert!(matches!(err, OutputError::CorruptJournal { line: 2, .. }), "{err:?}");
        assert!(
            err.to_string().starts_with("journal.jsonl line 2 is not a valid entry"),
            "{err}"
        );
        // Nothing was cut off.
        assert_eq!(fs::read_to_string(&journal).unwrap().lines().count(), 3);
    }

    #[test]
    fn sanitised_name_collisions_get_suffixes_that_survive_reopening() {
        let tmp = tempfile::tempdir().unwrap();
        let mut out = OutputDir::open(tmp.path()).unwrap();
        for name in ["a b", "a_b", "a/b"] {
            write(&mut out, name, name);
        }
        let files = |out: &OutputDir| ["a b", "a_b", "a/b"].map(|n| out.entry(n).unwrap().qr_file.clone());
        assert_eq!(files(&out), ["qr/a_b.png", "qr/a_b-2.png", "qr/a_b-3.png"]);
        drop(out);

        let mut out = OutputDir::open(tmp.path()).unwrap();
        assert_eq!(files(&out), ["qr/a_b.png", "qr/a_b-2.png", "qr/a_b-3.png"]);
        write(&mut out, "a\u{e9}b", "x");
        write(&mut out, "a_b", "y");
        assert_eq!(out.entry("a\u{e9}b").unwrap().qr_file, "qr/a_b-4.png");
        assert_eq!(out.entry("a_b").unwrap().qr_file, "qr/a_b-2.png");
        assert_eq!(
            files_under(tmp.path()),
            [
                "journal.jsonl",
                "qr/a_b-2.png",
                "qr/a_b-3.png",
                "qr/a_b-4.png",
                "qr/a_b.png"
            ]
        );
    }

    #[test]
    fn odd_usernames_make_safe_file_names() {
        assert_eq!(sanitise("alice.smith-2_x"), "alice.smith-2_x");
        assert_eq!(sanitise("Alice@Example.org"), "alice_example.org");
        assert_eq!(sanitise("../etc/passwd"), "_._etc_passwd");
        assert_eq!(sanitise(".hidden"), "_hidden");
        assert_eq!(sanitise("\u{1F600}"), "_");
        assert_eq!(sanitise(&"x".repeat(256)).len(), MAX_STEM);
        assert!(is_safe_qr_file("qr/a_b-2.png"));
        for unsafe_name in [
            "qr/../x.png",
            "../qr/x.png",
            "qr/.x.png",
            "qr/.png",
            "qr/x.svg",
            "x.png",
            "qr/a/b.png",
        ] {
            assert!(!is_safe_qr_file(unsafe_name), "{unsafe_name}");
        }
    }

    #[test]
    fn a_tampered_journal_path_is_not_reused() {
        let tmp = tempfile::tempdir().unwrap();
        let mut bad = entry("alice", "t1", 0);
        bad.qr_file = "../outside.png".into();
        let mut line = serde_json::to_string(&bad).unwrap();
        line.push('\n');
        fs::write(tmp.path().join(JOURNAL), line).unwrap();

        let mut out = OutputDir::open(tmp.path()).unwrap();
        write(&mut out, "alice", "t2");
        assert_eq!(out.entry("alice").unwrap().qr_file, "qr/alice.png");
        assert!(!tmp.path().join("../outside.png").exists());
    }

    #[test]
    fn leftover_temporary_files_are_removed_on_open() {
        let tmp = tempfile::tempdir().unwrap();
        drop(OutputDir::open(tmp.path()).unwrap());
        let stale = tmp.path().join("qr").join(format!("{TMP_PREFIX}abc"));
        fs::write(&stale, b"half a QR image").unwrap();
        let keep = tmp.path().join("notes.txt");
        fs::write(&keep, b"mine").unwrap();
        drop(OutputDir::open(tmp.path()).unwrap());
        assert!(!stale.exists());
        assert!(keep.exists());
    }

    #[test]
    fn qr_errors_record_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let mut out = OutputDir::open(tmp.path()).unwrap();
        let too_long = format!("otpauth://totp/x?secret={}", "\u{e9}".repeat(3000));
        let err = out.write_qr_and_record(entry("alice", "t1", 0), &too_long).unwrap_err();
        assert!(matches!(err, OutputError::Qr { .. }), "{err:?}");
        assert!(!err.to_string().contains("secret"));
        assert!(out.entry("alice").is_none());
        assert_eq!(files_under(tmp.path()), ["journal.jsonl"]);
        assert!(fs::read(tmp.path().join(JOURNAL)).unwrap().is_empty());
    }

    #[test]
    fn out_of_range_issue_time_is_a_manifest_error() {
        let tmp = tempfile::tempdir().unwrap();
        let mut out = OutputDir::open(tmp.path()).unwrap();
        out.write_qr_and_record(entry("alice", "t1", i64::MAX), &uri("alice"))
            .unwrap();
        let err = out.finish().unwrap_err();
        assert!(matches!(err, OutputError::IssuedAt { .. }), "{err:?}");
    }

    #[test]
    fn empty_folder_finishes_with_header_only_manifests() {
        let tmp = tempfile::tempdir().unwrap();
        OutputDir::open(tmp.path()).unwrap().finish().unwrap();
        assert_eq!(
            fs::read_to_string(tmp.path().join("manifest.csv")).unwrap(),
            "username,display_name,email,group,token_id,issued_at,qr_file\n"
        );
        assert_eq!(fs::read_to_string(tmp.path().join("manifest.json")).unwrap(), "[]\n");
    }
}
