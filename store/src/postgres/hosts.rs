//! Parsing a PostgreSQL URL that may name several hosts, as libpq writes them
//! (`postgres://user@db1:5432,db2:5432/rampart?sslmode=require`), into one connect-options
//! value per host. Errors never quote the URL, which may hold a password.

use std::str::FromStr;

use sqlx::postgres::PgConnectOptions;

use crate::StoreError;

/// One [`PgConnectOptions`] per host of `url`, in order; `password` (from a file or the
/// environment) overrides one written in the URL.
pub fn parse_hosts(url: &str, password: Option<&str>) -> Result<Vec<PgConnectOptions>, StoreError> {
    let bad = |why: &str| {
        StoreError::Config(format!(
            "store url: {why} (expected postgres://USER@HOST:PORT[,HOST:PORT…]/DATABASE)"
        ))
    };
    let (scheme, rest) = url.split_once("://").ok_or_else(|| bad("no scheme"))?;
    if scheme != "postgres" && scheme != "postgresql" {
        return Err(bad("the scheme is not postgres"));
    }
    let (authority, path) = match rest.find(['/', '?']) {
        Some(at) => rest.split_at(at),
        None => (rest, ""),
    };
    let (userinfo, hosts) = match authority.rsplit_once('@') {
        Some((userinfo, hosts)) => (Some(userinfo), hosts),
        None => (None, authority),
    };
    if hosts.is_empty() {
        return Err(bad("no host"));
    }
    hosts
        .split(',')
        .map(|host| {
            if host.is_empty() {
                return Err(bad("an empty host in the list"));
            }
            let single = match userinfo {
                Some(userinfo) => format!("{scheme}://{userinfo}@{host}{path}"),
                None => format!("{scheme}://{host}{path}"),
            };
            let options = PgConnectOptions::from_str(&single).map_err(|_| bad("not a valid PostgreSQL URL"))?;
            Ok(match password {
                Some(password) => options.password(password),
                None => options,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::parse_hosts;

    #[test]
    fn every_host_of_a_list_gets_the_same_user_database_and_options() {
        let hosts =
            parse_hosts("postgres://rampart@db1:15432,db2:6543/rampart?sslmode=disable", None).unwrap_or_default();
        let found: Vec<(String, u16, Option<String>)> = hosts
            .iter()
            .map(|h| {
                (
                    h.get_host().to_owned(),
                    h.get_port(),
                    h.get_database().map(str::to_owned),
                )
            })
            .collect();
        assert_eq!(
            found,
            vec![
                ("db1".to_owned(), 15432, Some("rampart".to_owned())),
                ("db2".to_owned(), 6543, Some("rampart".to_owned()))
            ]
        );
        assert!(hosts.iter().all(|h| h.get_username() == "rampart"));
    }

    #[test]
    fn bad_urls_are_refused_without_quoting_them() {
        for url in [
            "mysql://u:hunter2@db/x",
            "postgres://u:hunter2@/x",
            "postgres://u:hunter2@db1,,db2/x",
            "db1",
        ] {
            let err = parse_hosts(url, None).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(err.starts_with("store settings: store url:"), "{url}: {err}");
            assert!(!err.contains("hunter2"), "{err}");
        }
    }
}
