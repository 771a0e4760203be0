//! The `policy.toml` format: parsing, and validation that reports every problem with its location.

use super::rule::{IMPLICIT_SUFFIX, Rule};
use super::window::{Schedule, Window, time_zone};
use super::{MAX_POLICY_LEN, Policy, Resource, Target};
use jiff::SignedDuration;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

/// One problem found in a policy file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyProblem {
    /// Where: `resource[2] "intranet".target`, `rule[1] "contractors".windows[0]`, or `file`
    /// for syntax errors.
    pub location: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for PolicyProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}

/// Every problem found in a policy file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} problem(s) in policy: {}", .0.len(), join(.0))]
pub struct PolicyErrors(pub Vec<PolicyProblem>);

fn join(problems: &[PolicyProblem]) -> String {
    problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

/// The fields of a `[[resource]]` table.
const RESOURCE_FIELDS: &[&str] = &["name", "target", "description", "allow_users", "allow_groups"];
/// The fields of a `[[rule]]` table.
const RULE_FIELDS: &[&str] = &[
    "name",
    "resources",
    "users",
    "groups",
    "time_zone",
    "windows",
    "max_session_age",
];

/// One `[[resource]]` or `[[rule]]` table: where it is, its name as written, and its fields
/// when they have the right types.
struct Entry<T> {
    index: usize,
    name: String,
    fields: Option<T>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResourceEntry {
    name: String,
    target: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    allow_users: Vec<String>,
    #[serde(default)]
    allow_groups: Vec<String>,
}

/// Required fields default to empty so that a missing one is reported with its location.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleEntry {
    #[serde(default)]
    name: String,
    #[serde(default)]
    resources: Vec<String>,
    #[serde(default)]
    users: Vec<String>,
    #[serde(default)]
    groups: Vec<String>,
    time_zone: Option<String>,
    #[serde(default)]
    windows: Vec<String>,
    max_session_age: Option<String>,
}

/// Problems found so far.
#[derive(Default)]
struct Problems(Vec<PolicyProblem>);

impl Problems {
    fn add(&mut self, location: impl Into<String>, message: impl Into<String>) {
        self.0.push(PolicyProblem {
            location: location.into(),
            message: message.into(),
        });
    }

    /// Records the error of `result` at `location`, keeping the value if there is one.
    fn take<T>(&mut self, location: impl FnOnce() -> String, result: Result<T, String>) -> Option<T> {
        result.map_err(|message| self.add(location(), message)).ok()
    }
}

impl Policy {
    /// Parses and validates a policy file, reporting every problem at once.
    ///
    /// The file has `[[resource]]` tables (`name`, `target`, optional `description`, and
    /// optional `allow_users`/`allow_groups`, which form the rule `<name>.allow`, valid at any
    /// time) and `[[rule]]` tables:
    ///
    /// ```toml
    /// [[rule]]
    /// name = "contractors-office-hours"   # unique; `<resource>.allow` is reserved
    /// resources = ["intranet", "mail"]     # defined resources, at least one
    /// groups = ["contractors"]             # groups and/or users, at least one in all
    /// users = ["carol"]
    /// time_zone = "Europe/Zurich"          # IANA name, required with windows
    /// windows = ["Mon-Fri 07:00-20:00", "Sat 09:00-12:00"]   # absent or empty: any time
    /// max_session_age = "8h"               # optional, e.g. "90m", "1h 30m", "45s"
    /// ```
    ///
    /// A window is `DAYS HH:MM-HH:MM`: days are `Mon`..`Sun` (or full names, any case), ranges
    /// such as `Mon-Fri` or `Fri-Mon`, comma lists such as `Mon,Wed-Fri`, or `daily`. The start
    /// is inclusive and the end exclusive; the end may be `24:00`, and an end before the start
    /// runs overnight into the next day (`Fri 22:00-06:00` ends Saturday 06:00).
    pub fn parse(text: &str) -> Result<Self, PolicyErrors> {
        let file_problem = |message: String| {
            PolicyErrors(vec![PolicyProblem {
                location: "file".into(),
                message,
            }])
        };
        if text.len() > MAX_POLICY_LEN {
            return Err(file_problem(format!("larger than {MAX_POLICY_LEN} bytes")));
        }
        // Only a syntax error stops the check: after it, every table is checked on its own, so
        // an unknown field or a wrong type in one hides nothing in the others.
        let mut file: toml::Table = toml::from_str(text).map_err(|e| file_problem(syntax_message(text, &e)))?;
        let mut problems = Problems::default();
        let resource_entries: Vec<Entry<ResourceEntry>> =
            entries(file.remove("resource"), "resource", RESOURCE_FIELDS, &mut problems);
        let rule_entries: Vec<Entry<RuleEntry>> = entries(file.remove("rule"), "rule", RULE_FIELDS, &mut problems);
        for key in file.keys() {
            // A key may be empty (`[""]`); the location must still say something.
            let location = if key.is_empty() { "\"\"" } else { key.as_str() };
            problems.add(
                location,
                "unknown section: a policy has only [[resource]] and [[rule]] tables",
            );
        }
        let (resources, mut rules) = check_resources(&resource_entries, &mut problems);
        // Every resource named in the file counts as declared, even one with problems of its
        // own, so a rule naming it is not blamed as well.
        let declared: HashSet<&str> = resource_entries.iter().map(|r| r.name.as_str()).collect();
        let mut first_use: HashMap<&str, usize> = HashMap::new();
        for entry in &rule_entries {
            let index = entry.index;
            let at = format!("rule[{index}] {:?}", entry.name);
            let earlier = *first_use.entry(&entry.name).or_insert(index);
            if earlier != index {
                problems.add(
                    format!("{at}.name"),
                    format!("duplicate rule name (also rule[{earlier}])"),
                );
            }
            if let Some(fields) = &entry.fields {
                rules.extend(check_rule(&at, fields, &declared, &mut problems));
            }
        }
        if problems.0.is_empty() {
            Ok(Self { resources, rules })
        } else {
            Err(PolicyErrors(problems.0))
        }
    }
}

/// The tables under `key` (`resource` or `rule`), each read on its own: a field not in
/// `fields` is reported and left out, a table whose fields have the wrong types is reported
/// and kept only by its name, so the rest of the file is still checked.
fn entries<T: serde::de::DeserializeOwned>(
    value: Option<toml::Value>,
    key: &str,
    fields: &[&str],
    problems: &mut Problems,
) -> Vec<Entry<T>> {
    let items = match value {
        None => return Vec::new(),
        Some(toml::Value::Array(items)) => items,
        Some(_) => {
            problems.add(key, format!("must be a list of tables, written [[{key}]]"));
            return Vec::new();
        }
    };
    let mut entries = Vec::new();
    for (index, item) in items.into_iter().enumerate() {
        let toml::Value::Table(mut table) = item else {
            problems.add(format!("{key}[{index}]"), format!("must be a table, written [[{key}]]"));
            continue;
        };
        let name = table
            .get("name")
            .and_then(toml::Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let at = format!("{key}[{index}] {name:?}");
        let unknown: Vec<String> = table
            .keys()
            .filter(|k| !fields.contains(&k.as_str()))
            .cloned()
            .collect();
        for field in unknown {
            table.remove(&field);
            problems.add(
                format!("{at}.{field}"),
                format!("unknown field; a [[{key}]] has {}", fields.join(", ")),
            );
        }
        let fields = toml::Value::Table(table)
            .try_into::<T>()
            .map_err(|e| problems.add(at, e.message().trim().to_owned()))
            .ok();
        entries.push(Entry { index, name, fields });
    }
    entries
}

/// The valid resources by name, and their implicit rules in file order.
fn check_resources(
    entries: &[Entry<ResourceEntry>],
    problems: &mut Problems,
) -> (BTreeMap<String, Resource>, Vec<Rule>) {
    let mut resources = BTreeMap::new();
    let mut rules = Vec::new();
    let mut seen = HashSet::new();
    for entry in entries {
        let index = entry.index;
        let resource = entry
            .fields
            .as_ref()
            .and_then(|fields| check_resource(index, fields, problems));
        if !seen.insert(entry.name.as_str()) {
            problems.add(
                format!("resource[{index}] {:?}.name", entry.name),
                "duplicate resource name",
            );
        } else if let Some(resource) = resource {
            rules.extend(Rule::implicit(&resource));
            resources.insert(resource.name.clone(), resource);
        }
    }
    (resources, rules)
}

/// A TOML syntax or shape error, with its line number when known.
fn syntax_message(text: &str, error: &toml::de::Error) -> String {
    match error.span() {
        Some(span) => {
            let line = text.get(..span.start).map_or(0, |before| before.matches('\n').count()) + 1;
            format!("line {line}: {}", error.message())
        }
        None => error.message().to_owned(),
    }
}

/// Validates one `[[resource]]`; `None` if it cannot be built (problems recorded).
fn check_resource(index: usize, entry: &ResourceEntry, problems: &mut Problems) -> Option<Resource> {
    let at = format!("resource[{index}] {:?}", entry.name);
    problems.take(|| format!("{at}.name"), check_name(&entry.name));
    let target = problems.take(|| format!("{at}.target"), Target::parse(&entry.target));
    let allow_users = normalise_users(&entry.allow_users, &format!("{at}.allow_users"), problems);
    let allow_groups = trim_groups(&entry.allow_groups, &format!("{at}.allow_groups"), problems);
    Some(Resource {
        name: entry.name.clone(),
        target: target?,
        description: entry.description.clone(),
        allow_users,
        allow_groups,
    })
}

/// Validates one `[[rule]]` located at `at`; problems are recorded, the rule returned only
/// when it is sound.
fn check_rule(at: &str, entry: &RuleEntry, declared: &HashSet<&str>, problems: &mut Problems) -> Option<Rule> {
    let before = problems.0.len();
    problems.take(|| format!("{at}.name"), check_name(&entry.name));
    if let Some(resource) = entry
        .name
        .strip_suffix(IMPLICIT_SUFFIX)
        .filter(|r| declared.contains(r))
    {
        let message = format!(
            "{:?} is reserved for the allow_users/allow_groups of resource {resource:?}",
            entry.name
        );
        problems.add(format!("{at}.name"), message);
    }
    if entry.resources.is_empty() {
        problems.add(format!("{at}.resources"), "names no resources");
    }
    for unknown in entry.resources.iter().filter(|r| !declared.contains(r.as_str())) {
        problems.add(format!("{at}.resources"), format!("unknown resource {unknown:?}"));
    }
    let users = normalise_users(&entry.users, &format!("{at}.users"), problems);
    let groups = trim_groups(&entry.groups, &format!("{at}.groups"), problems);
    if entry.users.is_empty() && entry.groups.is_empty() {
        problems.add(at, "names no groups or users");
    }
    let schedule = check_schedule(at, entry, problems);
    let max_session_age = entry
        .max_session_age
        .as_deref()
        .and_then(|text| problems.take(|| format!("{at}.max_session_age"), session_age(text)));
    (problems.0.len() == before).then(|| Rule {
        name: entry.name.clone(),
        resources: entry.resources.clone(),
        users,
        groups,
        schedule,
        max_session_age,
    })
}

/// The rule's windows in its time zone; `None` for "any time" (and after problems).
fn check_schedule(at: &str, entry: &RuleEntry, problems: &mut Problems) -> Option<Schedule> {
    let windows: Vec<Option<Window>> = entry
        .windows
        .iter()
        .enumerate()
        .map(|(i, text)| problems.take(|| format!("{at}.windows[{i}]"), Window::parse(text)))
        .collect();
    let Some(zone_name) = entry.time_zone.as_deref() else {
        if !windows.is_empty() {
            problems.add(at, "windows need a time_zone");
        }
        return None;
    };
    let zone = problems.take(|| format!("{at}.time_zone"), time_zone(zone_name));
    let windows: Vec<Window> = windows.into_iter().collect::<Option<_>>()?;
    if windows.is_empty() {
        return None;
    }
    Some(Schedule::new(zone?, zone_name, windows))
}

/// `8h`, `90m`, `1h 30m`, `45s` (or ISO 8601 `PT8H`): positive whole seconds.
fn session_age(text: &str) -> Result<SignedDuration, String> {
    let age: SignedDuration = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a duration such as \"8h\", \"90m\" or \"1h 30m\""))?;
    if !age.is_positive() {
        return Err(format!("{text:?} must be longer than zero"));
    }
    if age.subsec_nanos() != 0 {
        return Err(format!("{text:?} must be a whole number of seconds"));
    }
    Ok(age)
}

fn normalise_users(users: &[String], location: &str, problems: &mut Problems) -> Vec<String> {
    users
        .iter()
        .filter_map(|user| {
            let normalised = crate::username::normalize_username(user).map_err(|e| format!("{user:?}: {e}"));
            problems.take(|| location.to_owned(), normalised)
        })
        .collect()
}

fn trim_groups(groups: &[String], location: &str, problems: &mut Problems) -> Vec<String> {
    if groups.iter().any(|g| g.trim().is_empty()) {
        problems.add(location, "empty group name");
    }
    groups.iter().map(|g| g.trim().to_owned()).collect()
}

/// Resource and rule names: 1 to 64 letters, digits, `-`, `_` and `.`.
fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 64 {
        return Err("must be 1 to 64 characters".into());
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err("may contain only letters, digits, '-', '_' and '.'".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn session_ages() {
        assert_eq!(session_age("8h").unwrap().as_secs(), 8 * 3600);
        assert_eq!(session_age("90m").unwrap().as_secs(), 5400);
        assert_eq!(session_age("1h 30m").unwrap().as_secs(), 5400);
        assert_eq!(session_age("45s").unwrap().as_secs(), 45);
        assert_eq!(session_age("PT2H").unwrap().as_secs(), 7200);
        assert!(session_age("0s").unwrap_err().contains("longer than zero"));
        assert!(session_age("-1h").unwrap_err().contains("longer than zero"));
        assert!(session_age("1.5s").unwrap_err().contains("whole number"));
        assert!(session_age("eight hours").unwrap_err().contains("not a duration"));
        assert!(session_age("").unwrap_err().contains("not a duration"));
    }

    #[test]
    fn syntax_errors_carry_a_line() {
        let errors = Policy::parse("[[resource]]\nname = 'a'\ntarget = 'h:1\n").unwrap_err();
        assert_eq!(errors.0.len(), 1);
        assert_eq!(errors.0[0].location, "file");
        assert!(errors.0[0].message.starts_with("line 3"), "{}", errors.0[0].message);
    }

    /// Found by fuzzing: a table with an empty name (`[""]`) is still a located problem.
    #[test]
    fn an_empty_section_name_is_located() {
        let errors = Policy::parse("[\"\"]").unwrap_err().0;
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].location, "\"\"");
    }

    /// An unknown field once stopped the check, hiding an unknown resource and a bad day name
    /// after it: a file's problems came one edit at a time.
    #[test]
    fn structural_problems_do_not_hide_the_rest_of_the_file() {
        let text = "[[resource]]\nname = 'intranet'\ntarget = 'intranet.bank:443'\nallowed_groups = ['staff']\n\
                    [[resource]]\nname = 'mail'\ntarget = 25\n\
                    [[rule]]\nname = 'office'\nresources = ['intranet', 'wiki']\ngroups = ['staff']\n\
                    time_zone = 'Europe/Zurich'\nwindows = ['Mon-Fry 08:00-18:00']\n\
                    [[rule]]\nname = 'mail-rule'\nresources = ['mail']\nusers = ['bob']\n\
                    [settings]\nstrict = true\n";
        let errors = Policy::parse(text).unwrap_err().0;
        let found: Vec<String> = errors.iter().map(ToString::to_string).collect();
        let locations: Vec<&str> = errors.iter().map(|p| p.location.as_str()).collect();
        assert_eq!(
            locations,
            [
                r#"resource[0] "intranet".allowed_groups"#,
                r#"resource[1] "mail""#,
                "settings",
                r#"rule[0] "office".resources"#,
                r#"rule[0] "office".windows[0]"#,
            ],
            "{found:#?}"
        );
        assert!(
            found[0].contains("allow_groups"),
            "the known fields are listed: {found:?}"
        );
        assert!(found[1].contains("string"), "the wrong type is named: {found:?}");
        assert!(found[3].contains("\"wiki\""), "{found:?}");
        // The rule naming the resource with a bad target is not blamed for it.
        assert!(!found.iter().any(|p| p.contains("mail-rule")), "{found:?}");
    }
}
