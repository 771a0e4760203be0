//! A real OpenLDAP `slapd` per test: generated `slapd.conf` (back_mdb; core, cosine,
//! inetorgperson, nis schemas), a fixture directory loaded with `slapadd`, optional TLS with
//! certificates from `rampart-certs`, optional memberof overlay, listening on free 127.0.0.1
//! ports, stopped on drop. Like a production server, a plain search stops at 500 entries
//! (OpenLDAP's default size limit) while the service account may page past it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Base DN of the fixture directory.
pub const BASE: &str = "dc=bank,dc=example";
/// The service account the gateway searches with.
pub const SERVICE_DN: &str = "cn=rampart,ou=services,dc=bank,dc=example";
/// Its password.
pub const SERVICE_PASSWORD: &str = "svc-Passw0rd-fixture";

/// A person in the fixture directory.
#[derive(Debug, Clone, Copy)]
pub struct Person {
    /// Login name.
    pub uid: &'static str,
    /// Password.
    pub password: &'static str,
    /// entryUUID, fixed so several servers agree.
    pub uuid: &'static str,
}

/// In groups `staff` (groupOfNames) and `vpn-users`.
pub const ALICE: Person = Person {
    uid: "alice",
    password: "alice-Passw0rd-fixture",
    uuid: "6f1c2a4e-0000-4c4c-8a8a-00000000a11c",
};
/// In group `payments` (groupOfUniqueNames).
pub const BOB: Person = Person {
    uid: "bob",
    password: "bob-Passw0rd-fixture",
    uuid: "6f1c2a4e-0000-4c4c-8a8a-000000000b0b",
};
/// Disabled (`employeeType: disabled`), in `staff`.
pub const CAROL: Person = Person {
    uid: "carol",
    password: "carol-Passw0rd-fixture",
    uuid: "6f1c2a4e-0000-4c4c-8a8a-00000000ca01",
};

/// TLS files for slapd.
#[derive(Debug, Clone)]
pub struct SlapdTls {
    /// Server certificate (PEM).
    pub cert: PathBuf,
    /// Server key (PEM).
    pub key: PathBuf,
}

/// How to run a test slapd; [`SlapdOptions::default`] is what [`Slapd::start`] runs.
#[derive(Debug, Clone)]
pub struct SlapdOptions {
    /// Also listen on `ldaps://` with these files.
    pub tls: Option<SlapdTls>,
    /// LDIF entries appended to the fixture directory.
    pub extra_ldif: String,
    /// Log every connection and operation (for [`Slapd::binds_for`] and [`Slapd::log`]).
    pub stats: bool,
    /// Load the memberof overlay, which defines the searchable `memberOf` attribute. `slapadd`
    /// runs no overlay, so the values are written out instead: the fixture's people carry
    /// theirs, and `extra_ldif` people must carry their own (see [`member_of_lines`]).
    pub member_of: bool,
    /// More modules to load from `/usr/lib/ldap` (e.g. `ppolicy`, `retcode`).
    pub modules: Vec<String>,
    /// `slapd.conf` lines appended to the database's section (overlays and their settings).
    pub database_config: String,
}

impl Default for SlapdOptions {
    fn default() -> Self {
        Self {
            tls: None,
            extra_ldif: String::new(),
            stats: true,
            member_of: false,
            modules: Vec::new(),
            database_config: String::new(),
        }
    }
}

/// `memberOf:` lines naming the groups `cn=NAME,ou=groups,BASE`, for people in `extra_ldif`
/// when [`SlapdOptions::member_of`] is on.
pub fn member_of_lines(groups: &[&str]) -> String {
    groups
        .iter()
        .map(|g| format!("memberOf: cn={g},ou=groups,{BASE}\n"))
        .collect()
}

/// A running slapd.
#[derive(Debug)]
pub struct Slapd {
    child: Option<Child>,
    dir: tempfile::TempDir,
    /// `ldap://127.0.0.1:PORT`.
    pub url: String,
    /// `ldaps://127.0.0.1:PORT` when TLS is on.
    pub ldaps_url: Option<String>,
}

fn ldif(member_of: bool) -> String {
    let groups = |names: &[&str]| {
        if member_of {
            member_of_lines(names)
        } else {
            String::new()
        }
    };
    let person = |p: &Person, extra: &str| {
        format!(
            "dn: uid={uid},ou=people,{BASE}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid} Example\nsn: Example\n\
             userPassword: {pw}\nentryUUID: {uuid}\n{extra}\n",
            uid = p.uid,
            pw = p.password,
            uuid = p.uuid
        )
    };
    format!(
        "dn: {BASE}\nobjectClass: dcObject\nobjectClass: organization\no: Bank\ndc: bank\n\n\
         dn: ou=people,{BASE}\nobjectClass: organizationalUnit\nou: people\n\n\
         dn: ou=groups,{BASE}\nobjectClass: organizationalUnit\nou: groups\n\n\
         dn: ou=services,{BASE}\nobjectClass: organizationalUnit\nou: services\n\n\
         dn: {SERVICE_DN}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\ncn: rampart\n\
         userPassword: {SERVICE_PASSWORD}\n\n\
         {alice}{bob}{carol}\
         dn: cn=staff,ou=groups,{BASE}\nobjectClass: groupOfNames\ncn: staff\n\
         member: uid=alice,ou=people,{BASE}\nmember: uid=carol,ou=people,{BASE}\n\n\
         dn: cn=vpn-users,ou=groups,{BASE}\nobjectClass: groupOfNames\ncn: vpn-users\nmember: uid=alice,ou=people,{BASE}\n\n\
         dn: cn=payments,ou=groups,{BASE}\nobjectClass: groupOfUniqueNames\ncn: payments\n\
         uniqueMember: uid=bob,ou=people,{BASE}\n\n",
        alice = person(&ALICE, &groups(&["staff", "vpn-users"])),
        bob = person(&BOB, &groups(&["payments"])),
        carol = person(&CAROL, &format!("employeeType: disabled\n{}", groups(&["staff"]))),
    )
}

/// A TCP port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Slapd {
    /// Starts slapd with the fixture directory (and `extra_ldif` entries appended), logging
    /// every connection and operation (for [`Slapd::binds_for`]).
    pub fn start(tls: Option<SlapdTls>, extra_ldif: &str) -> Self {
        Self::start_with(tls, extra_ldif, true)
    }

    /// Like [`Slapd::start`]; `stats = false` turns slapd's per-operation log off, as a
    /// benchmark wants (that log costs slapd more CPU than the operations).
    pub fn start_with(tls: Option<SlapdTls>, extra_ldif: &str, stats: bool) -> Self {
        Self::start_opts(SlapdOptions {
            tls,
            extra_ldif: extra_ldif.to_owned(),
            stats,
            ..SlapdOptions::default()
        })
    }

    /// Starts slapd as `options` say.
    pub fn start_opts(options: SlapdOptions) -> Self {
        let SlapdOptions {
            tls,
            extra_ldif,
            stats,
            member_of,
            modules,
            database_config,
        } = options;
        let slapd = Path::new("/usr/sbin/slapd");
        assert!(
            slapd.exists(),
            "/usr/sbin/slapd is missing: install it with `apt-get install slapd ldap-utils` (scripts/test does)"
        );
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        let mut conf = String::new();
        for schema in ["core", "cosine", "inetorgperson", "nis"] {
            conf.push_str(&format!("include /etc/ldap/schema/{schema}.schema\n"));
        }
        conf.push_str(&format!(
            "modulepath /usr/lib/ldap\nmoduleload back_mdb\npidfile {pid}\n",
            pid = dir.path().join("slapd.pid").display()
        ));
        if member_of {
            conf.push_str("moduleload memberof\n");
        }
        for module in &modules {
            conf.push_str(&format!("moduleload {module}\n"));
        }
        if let Some(tls) = &tls {
            conf.push_str(&format!(
                "TLSCertificateFile {}\nTLSCertificateKeyFile {}\n",
                tls.cert.display(),
                tls.key.display()
            ));
        }
        conf.push_str(&format!(
            "database mdb\nmaxsize 268435456\nsuffix \"{BASE}\"\nrootdn \"cn=admin,{BASE}\"\nrootpw admin-fixture\n\
             directory {data}\nindex uid,member,uniqueMember{index} eq\n\
             limits dn.exact=\"{SERVICE_DN}\" size.soft=500 size.hard=500 size.prtotal=unlimited\n\
             access to attrs=userPassword by self write by anonymous auth by * none\n\
             access to * by users read by * none\n",
            data = data.display(),
            index = if member_of { ",memberOf" } else { "" },
        ));
        if member_of {
            conf.push_str("overlay memberof\n");
        }
        conf.push_str(&database_config);
        let conf_path = dir.path().join("slapd.conf");
        if !stats {
            conf = conf.replace("database mdb\n", "loglevel 0\ndatabase mdb\n");
        }
        std::fs::write(&conf_path, conf).unwrap();
        let ldif_path = dir.path().join("data.ldif");
        std::fs::write(&ldif_path, format!("{}{extra_ldif}", ldif(member_of))).unwrap();
        let out = Command::new("/usr/sbin/slapadd")
            .arg("-f")
            .arg(&conf_path)
            .arg("-l")
            .arg(&ldif_path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "slapadd failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );

        let port = free_port();
        let url = format!("ldap://127.0.0.1:{port}");
        let ldaps_url = tls.as_ref().map(|_| format!("ldaps://127.0.0.1:{}", free_port()));
        let listen = match &ldaps_url {
            Some(s) => format!("{url}/ {s}/"),
            None => format!("{url}/"),
        };
        let log = std::fs::File::create(dir.path().join("slapd.log")).unwrap();
        let child = Command::new(slapd)
            .arg("-f")
            .arg(&conf_path)
            .args(["-h", &listen, "-d", if stats { "256" } else { "0" }])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut s = Self {
            child: Some(child),
            dir,
            url,
            ldaps_url,
        };
        s.wait_ready(port);
        s
    }

    fn wait_ready(&mut self, port: u16) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!("slapd exited with {status}: {}", self.log());
            }
            assert!(Instant::now() < deadline, "slapd did not start: {}", self.log());
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// slapd's own log (`-d 256`: connections, binds, searches).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("slapd.log")).unwrap_or_default()
    }

    /// How many BIND requests named `dn` so far (slapd logs each request once with its
    /// `method=`, and successful ones again with their `mech=`).
    pub fn binds_for(&self, dn: &str) -> usize {
        let needle = format!("BIND dn=\"{dn}\" method=");
        self.log().lines().filter(|l| l.contains(&needle)).count()
    }

    /// Applies an LDIF change (`ldapmodify`) as the directory's administrator.
    pub fn modify(&self, ldif: &str) {
        let mut child = Command::new("ldapmodify")
            .args([
                "-x",
                "-H",
                &self.url,
                "-D",
                &format!("cn=admin,{BASE}"),
                "-w",
                "admin-fixture",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(child.stdin.as_mut().unwrap(), ldif.as_bytes()).unwrap();
        drop(child.stdin.take());
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "ldapmodify failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Stops slapd now.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The DN of a fixture person.
pub fn dn_of(p: &Person) -> String {
    format!("uid={},ou=people,{BASE}", p.uid)
}

/// Generated person number `i`: `(uid, password, entryUUID)`, e.g. `("user00042", ...)`.
pub fn generated_person(i: usize) -> (String, String, String) {
    (
        format!("user{i:05}"),
        format!("pw-{i:05}-generated"),
        format!("00000000-0000-4000-8000-{i:012}"),
    )
}

/// LDIF for generated people `0..count` under `ou=people`, for [`Slapd::start`]'s `extra_ldif`.
pub fn generated_people_ldif(count: usize) -> String {
    (0..count)
        .map(|i| {
            let (uid, pw, uuid) = generated_person(i);
            format!(
                "dn: uid={uid},ou=people,{BASE}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: Person {i}\n\
                 sn: Generated\nuserPassword: {pw}\nentryUUID: {uuid}\n\n"
            )
        })
        .collect()
}

impl Slapd {
    /// Directory settings for this server as the service account, with the password in
    /// `password_file` and `pool_size` connections per pool (group search mode).
    pub fn ldap_config(&self, password_file: &Path, pool_size: usize) -> rampart_directory::ldap::LdapConfig {
        rampart_directory::ldap::LdapConfig {
            urls: vec![self.url.clone()],
            starttls: false,
            ca_file: None,
            bind_dn: SERVICE_DN.into(),
            bind_password_file: Some(password_file.to_owned()),
            bind_password_env: None,
            user_base: format!("ou=people,{BASE}"),
            user_filter: "(&(objectClass=inetOrgPerson)(uid={username}))".into(),
            username_attribute: "uid".into(),
            id_attribute: "entryUUID".into(),
            display_name_attribute: "cn".into(),
            mail_attribute: "mail".into(),
            group_mode: rampart_directory::ldap::GroupMode::GroupSearch,
            group_base: Some(format!("ou=groups,{BASE}")),
            group_name_attribute: "cn".into(),
            disabled_when: vec![],
            pool_size: pool_size.min(256),
            connect_timeout_secs: 3,
            operation_timeout_secs: 10,
            retry_failed_server_secs: 30,
        }
    }
}
