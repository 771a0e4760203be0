//! Pure helpers over LDAP entries: filling the search filter safely, reading the stable id,
//! evaluating disabled rules and turning group DNs into names.

use super::config::DisabledRule;
use std::collections::HashMap;

/// The attributes of one entry, as text and as binary values.
#[derive(Debug, Clone, Default)]
pub(crate) struct Entry {
    pub dn: String,
    pub attrs: HashMap<String, Vec<String>>,
    pub bin_attrs: HashMap<String, Vec<Vec<u8>>>,
}

impl Entry {
    /// All text values of an attribute (names compare case-insensitively, as in LDAP).
    pub fn values(&self, name: &str) -> &[String] {
        self.attrs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map_or(&[], |(_, v)| v.as_slice())
    }

    fn binary(&self, name: &str) -> Option<&[u8]> {
        self.bin_attrs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| v.first())
            .map(Vec::as_slice)
    }

    /// The first text value of an attribute.
    pub fn first(&self, name: &str) -> Option<&str> {
        self.values(name).first().map(String::as_str)
    }

    fn present(&self, name: &str) -> bool {
        !self.values(name).is_empty() || self.binary(name).is_some()
    }
}

/// Puts the RFC 4515-escaped username into the filter template: `*`, `(`, `)`, `\` and NUL
/// become `\2a`, `\28`, `\29`, `\5c`, `\00`, so a typed name can never widen the search.
pub(crate) fn fill_filter(template: &str, username: &str) -> String {
    template.replace("{username}", &ldap3::ldap_escape(username))
}

/// The filter finding groups that list `dn` as a member.
pub(crate) fn group_filter(dn: &str, nested: bool) -> String {
    let dn = ldap3::ldap_escape(dn);
    if nested {
        format!("(member:1.2.840.113556.1.4.1941:={dn})")
    } else {
        format!("(|(&(objectClass=groupOfNames)(member={dn}))(&(objectClass=groupOfUniqueNames)(uniqueMember={dn})))")
    }
}

/// The user filter with `{username}` widened to `*`: every entry that could log in (a
/// presence or substring match), to combine with a membership condition.
pub(crate) fn any_user_filter(template: &str) -> String {
    template.replace("{username}", "*")
}

/// The filter finding the people (`any_user`, see [`any_user_filter`]) who are members of the
/// group `group_dn`: its `memberOf` values, or with `nested` Active Directory's
/// LDAP_MATCHING_RULE_IN_CHAIN, which also follows groups inside groups.
pub(crate) fn member_filter(any_user: &str, group_dn: &str, nested: bool) -> String {
    let dn = ldap3::ldap_escape(group_dn);
    if nested {
        format!("(&{any_user}(memberOf:1.2.840.113556.1.4.1941:={dn}))")
    } else {
        format!("(&{any_user}(memberOf={dn}))")
    }
}

/// The filter finding group entries named `name` (in `name_attribute`, or `cn` when the name
/// comes from the RDN). `group_search` looks only at the classes [`group_filter`] reads members
/// of; other modes also at Active Directory's `group`.
pub(crate) fn group_by_name_filter(name: &str, name_attribute: &str, group_search: bool) -> String {
    let name = ldap3::ldap_escape(name);
    let named = if name_attribute.eq_ignore_ascii_case("cn") {
        format!("(cn={name})")
    } else {
        format!("(|({name_attribute}={name})(cn={name}))")
    };
    let classes = if group_search {
        "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames))"
    } else {
        "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames)(objectClass=group))"
    };
    format!("(&{classes}{named})")
}

/// A `member` or `uniqueMember` value as a DN: `uniqueMember` may end with an optional UID
/// (`#'0101'B`, RFC 4517 Name and Optional UID), which is not part of the DN.
pub(crate) fn member_dn(value: &str) -> &str {
    match value.rsplit_once('#') {
        Some((dn, uid)) if uid.starts_with('\'') && uid.ends_with("'B") && !dn.ends_with('\\') => dn,
        _ => value,
    }
}

/// The RDNs of a DN, outermost last, split at unescaped commas and trimmed.
fn rdns(dn: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut escaped) = (0, false);
    for (i, c) in dn.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            ',' => {
                parts.push(dn[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(dn[start..].trim());
    parts.retain(|p| !p.is_empty());
    parts
}

/// The RDNs of a DN in a form to compare: lower-cased, white space around `=` removed.
fn rdn_keys(dn: &str) -> Vec<String> {
    rdns(dn)
        .iter()
        .map(|rdn| match rdn.split_once('=') {
            Some((attr, value)) => format!("{}={}", attr.trim(), value.trim()).to_lowercase(),
            None => rdn.to_lowercase(),
        })
        .collect()
}

/// A DN in a form to compare: RDNs lower-cased, with white space around `,` and `=` removed.
pub(crate) fn dn_key(dn: &str) -> String {
    rdn_keys(dn).join(",")
}

/// True when `dn` is `base` or below it (compared RDN by RDN).
pub(crate) fn dn_within(dn: &str, base: &str) -> bool {
    rdn_keys(dn).ends_with(&rdn_keys(base))
}

/// The stable identifier: text (`entryUUID`), or binary `objectGUID` formatted as a GUID.
pub(crate) fn stable_id(entry: &Entry, attribute: &str) -> Option<String> {
    if let Some(bytes) = entry.binary(attribute) {
        return Some(if bytes.len() == 16 && attribute.eq_ignore_ascii_case("objectGUID") {
            format_guid(bytes)
        } else {
            bytes.iter().map(|b| format!("{b:02x}")).collect()
        });
    }
    entry
        .first(attribute)
        .map(|v| v.trim().to_ascii_lowercase())
        .filter(|v| !v.is_empty())
}

/// Active Directory stores GUIDs with the first three fields little-endian.
fn format_guid(b: &[u8]) -> String {
    let hex = |bytes: &[u8]| bytes.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let rev = |bytes: &[u8]| bytes.iter().rev().map(|x| format!("{x:02x}")).collect::<String>();
    format!(
        "{}-{}-{}-{}-{}",
        rev(&b[0..4]),
        rev(&b[4..6]),
        rev(&b[6..8]),
        hex(&b[8..10]),
        hex(&b[10..16])
    )
}

/// True when any rule marks the entry disabled.
pub(crate) fn is_disabled(entry: &Entry, rules: &[DisabledRule]) -> bool {
    rules.iter().any(|rule| match (&rule.equals, rule.bit) {
        (Some(expected), _) => entry
            .values(&rule.attribute)
            .iter()
            .any(|v| v.trim().eq_ignore_ascii_case(expected)),
        (None, Some(bit)) => entry
            .values(&rule.attribute)
            .iter()
            .any(|v| v.trim().parse::<u64>().is_ok_and(|n| n & bit != 0)),
        (None, None) => entry.present(&rule.attribute),
    })
}

/// The value of a DN's first RDN (`cn=VPN Users,ou=groups,…` → `VPN Users`), unescaped.
pub(crate) fn first_rdn_value(dn: &str) -> Option<String> {
    let mut value = String::new();
    let mut chars = dn.chars().skip_while(|c| *c != '=').skip(1).peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let next = chars.next()?;
                if next.is_ascii_hexdigit() {
                    let low = chars.next()?;
                    let byte = u8::from_str_radix(&format!("{next}{low}"), 16).ok()?;
                    value.push(char::from(byte));
                } else {
                    value.push(next);
                }
            }
            ',' | '+' => break,
            c => value.push(c),
        }
    }
    let value = value.trim().to_owned();
    (!value.is_empty()).then_some(value)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn entry(pairs: &[(&str, &[&str])]) -> Entry {
        Entry {
            dn: "uid=x".into(),
            attrs: pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.iter().map(|s| (*s).to_owned()).collect()))
                .collect(),
            bin_attrs: HashMap::new(),
        }
    }

    #[test]
    fn metacharacters_cannot_escape_the_filter() {
        let f = fill_filter("(&(objectClass=inetOrgPerson)(uid={username}))", "alice)(uid=*");
        assert_eq!(f, r"(&(objectClass=inetOrgPerson)(uid=alice\29\28uid=\2a))");
        assert_eq!(fill_filter("(uid={username})", "*"), r"(uid=\2a)");
        assert_eq!(fill_filter("(uid={username})", "a\\b\0"), r"(uid=a\5cb\00)");
    }

    #[test]
    fn group_filters_escape_the_dn() {
        let f = group_filter("cn=a*b,dc=x", false);
        assert!(f.contains(r"member=cn=a\2ab,dc=x"), "{f}");
        assert!(group_filter("cn=a,dc=x", true).starts_with("(member:1.2.840.113556.1.4.1941:=cn=a,dc=x)"));
    }

    #[test]
    fn membership_filters_escape_the_group_dn() {
        let any = any_user_filter("(&(objectClass=inetOrgPerson)(uid={username}))");
        assert_eq!(any, "(&(objectClass=inetOrgPerson)(uid=*))");
        assert_eq!(
            member_filter(&any, r"cn=a*b\2c(c),dc=x", false),
            r"(&(&(objectClass=inetOrgPerson)(uid=*))(memberOf=cn=a\2ab\5c2c\28c\29,dc=x))"
        );
        assert_eq!(
            member_filter("(uid=*)", "cn=g,dc=x", true),
            "(&(uid=*)(memberOf:1.2.840.113556.1.4.1941:=cn=g,dc=x))"
        );
        let f = group_by_name_filter("staff)(cn=*", "cn", true);
        assert_eq!(
            f,
            r"(&(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames))(cn=staff\29\28cn=\2a))"
        );
        let f = group_by_name_filter("*", "displayName", false);
        assert!(f.ends_with(r"(objectClass=group))(|(displayName=\2a)(cn=\2a)))"), "{f}");
    }

    #[test]
    fn member_dns() {
        assert_eq!(member_dn("uid=bob,dc=x#'0101'B"), "uid=bob,dc=x");
        assert_eq!(member_dn("uid=bob,dc=x"), "uid=bob,dc=x");
        assert_eq!(member_dn(r"cn=a\#'1'B"), r"cn=a\#'1'B");
        assert_eq!(dn_key("UID=Bob , ou = People,DC=x"), "uid=bob,ou=people,dc=x");
        assert_eq!(dn_key(r"cn=a\,b,dc=x"), r"cn=a\,b,dc=x");
        assert!(dn_within("uid=bob,ou=People, dc=x", "ou=people,dc=x"));
        assert!(dn_within("ou=people,dc=x", "ou=people,dc=x"));
        assert!(!dn_within("uid=bob,ou=staff,dc=x", "ou=people,dc=x"));
        assert!(!dn_within("uid=bob,xou=people,dc=x", "ou=people,dc=x"));
        assert!(!dn_within(r"uid=a\,ou=people,dc=x", "ou=people,dc=x"));
        assert!(dn_within("cn=payments-ops,ou=groups,dc=x", "OU=Groups, DC=x"));
        assert!(!dn_within("cn=payments-ops,ou=lists,dc=x", "ou=groups,dc=x"));
    }

    #[test]
    fn stable_ids() {
        let e = entry(&[("entryUUID", &["6F1C2A4E-1111-4C4C-8A8A-000000000001"])]);
        assert_eq!(
            stable_id(&e, "entryuuid").unwrap(),
            "6f1c2a4e-1111-4c4c-8a8a-000000000001"
        );
        let mut ad = Entry::default();
        let guid = [
            0x33, 0x22, 0x11, 0x00, 0x55, 0x44, 0x77, 0x66, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff,
        ];
        ad.bin_attrs.insert("objectGUID".into(), vec![guid.to_vec()]);
        assert_eq!(
            stable_id(&ad, "objectGUID").unwrap(),
            "00112233-4455-6677-8899-aabbccddeeff"
        );
        assert!(stable_id(&entry(&[]), "entryUUID").is_none());
    }

    #[test]
    fn disabled_rules() {
        let presence = DisabledRule {
            attribute: "pwdAccountLockedTime".into(),
            equals: None,
            bit: None,
        };
        let equals = DisabledRule {
            attribute: "nsAccountLock".into(),
            equals: Some("true".into()),
            bit: None,
        };
        let uac = DisabledRule {
            attribute: "userAccountControl".into(),
            equals: None,
            bit: Some(2),
        };
        let rules = [presence, equals, uac];
        assert!(!is_disabled(&entry(&[("uid", &["a"])]), &rules));
        assert!(is_disabled(
            &entry(&[("pwdAccountLockedTime", &["20260101000000Z"])]),
            &rules
        ));
        assert!(is_disabled(&entry(&[("nsaccountlock", &["TRUE"])]), &rules));
        assert!(!is_disabled(&entry(&[("nsAccountLock", &["false"])]), &rules));
        assert!(is_disabled(&entry(&[("userAccountControl", &["514"])]), &rules));
        assert!(!is_disabled(&entry(&[("userAccountControl", &["512"])]), &rules));
    }

    #[test]
    fn group_names_from_dns() {
        assert_eq!(first_rdn_value("cn=VPN Users,ou=groups,dc=x").unwrap(), "VPN Users");
        assert_eq!(first_rdn_value(r"cn=R\2cD,ou=g").unwrap(), "R,D");
        assert_eq!(first_rdn_value(r"CN=a\,b+uid=x,dc=y").unwrap(), "a,b");
        assert!(first_rdn_value("garbage").is_none());
    }
}
