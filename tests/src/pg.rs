//! A PostgreSQL database of a test's own, shared by every service of that test the way one
//! organisation's nodes share theirs: a cluster started by `rampart-pgtest` (with a synchronous
//! standby when asked), the database migrated as `rampart-provisioner migrate` would, a
//! key-encryption key file, and the `[store]` table every node gets.

use rampart_pgtest::Cluster;

/// A migrated database and what a node needs to use it.
#[derive(Debug)]
pub struct SharedStore {
    /// The primary.
    pub primary: Cluster,
    /// The synchronous standby, when asked for.
    pub standby: Option<Cluster>,
    /// `postgres://…` naming the primary (and the standby after it).
    pub url: String,
    /// The key-encryption key file (0600).
    pub kek_file: std::path::PathBuf,
    _kek_dir: tempfile::TempDir,
}

impl SharedStore {
    /// A fresh database on a cluster of its own; with `standby`, a synchronous standby too,
    /// and the URL lists both hosts.
    pub async fn start(standby: bool) -> Self {
        let (primary, standby, url) = tokio::task::spawn_blocking(move || {
            let primary = Cluster::start().unwrap();
            let url = primary.fresh_database().unwrap();
            let standby = standby.then(|| primary.start_standby(true).unwrap());
            let url = match &standby {
                Some(standby) => url.replacen(
                    &format!("127.0.0.1:{}", primary.port()),
                    &format!("127.0.0.1:{},127.0.0.1:{}", primary.port(), standby.port()),
                    1,
                ),
                None => url,
            };
            (primary, standby, url)
        })
        .await
        .unwrap();
        rampart_store::PgStore::migrate(rampart_store::parse_hosts(&url, None).unwrap(), Default::default())
            .await
            .unwrap();
        let kek_dir = tempfile::tempdir().unwrap();
        let kek_file = kek_dir.path().join("kek");
        let (_, hex) = rampart_store::seal::LocalKek::generate().unwrap();
        std::fs::write(&kek_file, hex.as_bytes()).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&kek_file, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        Self {
            primary,
            standby,
            url,
            kek_file,
            _kek_dir: kek_dir,
        }
    }

    /// The `[store]` table for a node, with `extra` lines.
    pub fn table(&self, extra: &str) -> String {
        format!(
            "url = \"{}\"\nkek_file = \"{}\"\n{extra}\n",
            self.url,
            self.kek_file.display()
        )
    }
}
