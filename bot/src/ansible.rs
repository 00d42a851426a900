//! Ansible inventories, INI or YAML, read into inventory hosts for an import.
//!
//! What is read: hosts, the groups they are listed under (with `:children` / `children`
//! nesting, so a host of `web` is in `prod` when `web` is a child of `prod`), host
//! variables (`host key=value` in INI, a host's mapping in YAML) as attributes, and
//! numeric ranges (`web[01:20].example.com`). Group variables are counted and left out:
//! they describe how Ansible connects, not which hosts there are. The implicit groups
//! `all` and `ungrouped` are not made.
//!
//! The text is bounded ([`MAX_SOURCE`]) before it is read, and so is what it expands to
//! ([`inventory::MAX_HOSTS`] hosts), so a small range cannot ask for a billion hosts.

use std::collections::{BTreeMap, BTreeSet};

use jobs::inventory::{self, Host};

/// The largest inventory text read, in bytes.
pub const MAX_SOURCE: usize = 1 << 20;
/// Nesting of groups followed at most.
const MAX_DEPTH: usize = 16;

/// An inventory read: its hosts, and what was left out.
#[derive(Debug, Default, PartialEq)]
pub struct Imported {
    pub hosts: Vec<Host>,
    /// Groups whose variables were left out.
    pub groups_with_vars: usize,
}

/// Why an inventory could not be read; the sentence names the line where there is one.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum AnsibleError {
    #[error("the inventory is {0} bytes; at most {MAX_SOURCE} are read")]
    TooLarge(usize),
    #[error("line {line}: {reason}")]
    Line { line: usize, reason: String },
    #[error("the YAML inventory cannot be read: {0}")]
    Yaml(String),
    #[error("{0}")]
    Invalid(String),
}

/// Which syntax an inventory is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Ini,
    Yaml,
}

impl Format {
    pub fn parse(name: &str) -> Option<Format> {
        match name {
            "ini" => Some(Format::Ini),
            "yaml" | "yml" => Some(Format::Yaml),
            _ => None,
        }
    }
}

/// Reads `text` as an inventory in `format`.
pub fn read(text: &str, format: Format) -> Result<Imported, AnsibleError> {
    if text.len() > MAX_SOURCE {
        return Err(AnsibleError::TooLarge(text.len()));
    }
    let mut book = Book::default();
    match format {
        Format::Ini => read_ini(text, &mut book)?,
        Format::Yaml => read_yaml(text, &mut book)?,
    }
    book.finish()
}

/// What a reading gathers before groups are nested.
#[derive(Default)]
struct Book {
    hosts: BTreeMap<String, Host>,
    /// Group to its child groups.
    children: BTreeMap<String, BTreeSet<String>>,
    groups_with_vars: BTreeSet<String>,
}

impl Book {
    /// Host pattern `pattern` (a name or a range) listed under `group` with `vars`.
    fn add(
        &mut self,
        pattern: &str,
        group: Option<&str>,
        vars: &[(String, String)],
    ) -> Result<(), String> {
        for name in expand(
            pattern,
            inventory::MAX_HOSTS.saturating_sub(self.hosts.len()),
        )? {
            inventory::check_host_name(&name).map_err(|e| e.to_string())?;
            if !self.hosts.contains_key(&name) && self.hosts.len() >= inventory::MAX_HOSTS {
                return Err(format!(
                    "more than {} hosts; the inventory holds at most that many",
                    inventory::MAX_HOSTS
                ));
            }
            let host = self
                .hosts
                .entry(name.clone())
                .or_insert_with(|| Host::new(name));
            if let Some(group) = group {
                host.groups.insert(group.to_string());
            }
            for (key, value) in vars {
                host.attributes.insert(key.clone(), value.clone());
            }
        }
        Ok(())
    }

    fn group(&self, name: &str) -> Result<(), String> {
        inventory::check_group_name(name).map_err(|e| e.to_string())
    }

    /// Adds each host to the groups its groups are children of, then checks every host.
    fn finish(mut self) -> Result<Imported, AnsibleError> {
        // Parents of each group, transitively, bounded in depth (a cycle stops there).
        let mut parents: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (parent, kids) in &self.children {
            for kid in kids {
                parents
                    .entry(kid.clone())
                    .or_default()
                    .insert(parent.clone());
            }
        }
        let ancestors = |group: &str| {
            let mut found = BTreeSet::new();
            let mut frontier = vec![group.to_string()];
            for _ in 0..MAX_DEPTH {
                let mut next = Vec::new();
                for g in &frontier {
                    for p in parents.get(g).into_iter().flatten() {
                        if found.insert(p.clone()) {
                            next.push(p.clone());
                        }
                    }
                }
                if next.is_empty() {
                    break;
                }
                frontier = next;
            }
            found
        };
        let mut memo: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for host in self.hosts.values_mut() {
            let mut all = host.groups.clone();
            for g in &host.groups {
                let up = memo.entry(g.clone()).or_insert_with(|| ancestors(g));
                all.extend(up.iter().cloned());
            }
            all.remove("all");
            all.remove("ungrouped");
            host.groups = all;
            host.check()
                .map_err(|e| AnsibleError::Invalid(e.to_string()))?;
        }
        Ok(Imported {
            hosts: self.hosts.into_values().collect(),
            groups_with_vars: self.groups_with_vars.len(),
        })
    }
}

/// The names a host pattern stands for: `web[01:03]` is web01, web02, web03 (the width
/// of the first bound is kept); at most `room` names.
fn expand(pattern: &str, room: usize) -> Result<Vec<String>, String> {
    let Some(open) = pattern.find('[') else {
        return Ok(vec![pattern.to_string()]);
    };
    let close = pattern[open..]
        .find(']')
        .map(|i| open + i)
        .ok_or_else(|| format!("\"{pattern}\": a range opened with [ is not closed"))?;
    let (prefix, range, suffix) = (
        &pattern[..open],
        &pattern[open + 1..close],
        &pattern[close + 1..],
    );
    if suffix.contains('[') {
        return Err(format!("\"{pattern}\": one range per host pattern"));
    }
    let (from, to) = range
        .split_once(':')
        .ok_or_else(|| format!("\"{pattern}\": a range is [first:last]"))?;
    let width = from.len();
    let (first, last) = match (from.parse::<u64>(), to.parse::<u64>()) {
        (Ok(a), Ok(b)) if a <= b => (a, b),
        _ => {
            return Err(format!(
                "\"{pattern}\": a range is [first:last] with whole numbers, first not past last"
            ))
        }
    };
    let count = last - first + 1;
    if count > room as u64 {
        return Err(format!(
            "\"{pattern}\" stands for {count} hosts; the inventory holds at most {}",
            inventory::MAX_HOSTS
        ));
    }
    Ok((first..=last)
        .map(|n| format!("{prefix}{n:0width$}{suffix}"))
        .collect())
}

/// What an INI section holds.
enum Section {
    Hosts(Option<String>),
    Children(String),
    Vars,
}

fn read_ini(text: &str, book: &mut Book) -> Result<(), AnsibleError> {
    let mut section = Section::Hosts(None);
    for (n, raw) in text.lines().enumerate() {
        let at = |reason: String| AnsibleError::Line {
            line: n + 1,
            reason,
        };
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(header) = line.strip_prefix('[') {
            let header = header
                .strip_suffix(']')
                .ok_or_else(|| at("a section header ends with ]".into()))?;
            let (name, kind) = header.split_once(':').unwrap_or((header, ""));
            book.group(name).map_err(at)?;
            section = match kind {
                "" => Section::Hosts(Some(name.to_string())),
                "children" => Section::Children(name.to_string()),
                "vars" => {
                    book.groups_with_vars.insert(name.to_string());
                    Section::Vars
                }
                other => {
                    return Err(at(format!(
                        "[{name}:{other}]: a section is [group], [group:children] or [group:vars]"
                    )))
                }
            };
            continue;
        }
        match &section {
            Section::Vars => {}
            Section::Children(parent) => {
                book.group(line).map_err(at)?;
                book.children
                    .entry(parent.clone())
                    .or_default()
                    .insert(line.to_string());
            }
            Section::Hosts(group) => {
                let mut words = line.split_whitespace();
                let pattern = words.next().unwrap_or_default();
                let mut vars = Vec::new();
                for word in words {
                    if word.starts_with('#') {
                        break;
                    }
                    let (key, value) = word.split_once('=').ok_or_else(|| {
                        at(format!("\"{word}\": host variables are written key=value"))
                    })?;
                    let value = value.trim_matches(|c| c == '"' || c == '\'');
                    inventory::check_attribute(key, value).map_err(|e| at(e.to_string()))?;
                    vars.push((key.to_string(), value.to_string()));
                }
                book.add(pattern, group.as_deref(), &vars).map_err(at)?;
            }
        }
    }
    Ok(())
}

fn read_yaml(text: &str, book: &mut Book) -> Result<(), AnsibleError> {
    use yaml_serde::Value;
    let doc: Value = yaml_serde::from_str(text).map_err(|e| AnsibleError::Yaml(e.to_string()))?;
    let top = match doc {
        Value::Mapping(m) => m,
        Value::Null => return Ok(()),
        _ => {
            return Err(AnsibleError::Invalid(
                "a YAML inventory is a mapping of groups (all: hosts: …)".into(),
            ))
        }
    };
    // (group, its mapping, depth), walked without recursion.
    let mut todo: Vec<(String, Value, usize)> =
        top.into_iter().map(|(k, v)| (scalar(&k), v, 0)).collect();
    while let Some((group, body, depth)) = todo.pop() {
        book.group(&group).map_err(AnsibleError::Invalid)?;
        if depth > MAX_DEPTH {
            return Err(AnsibleError::Invalid(format!(
                "group {group} is nested more than {MAX_DEPTH} deep"
            )));
        }
        let body = match body {
            Value::Mapping(m) => m,
            Value::Null => continue,
            _ => {
                return Err(AnsibleError::Invalid(format!(
                    "group {group}: expected hosts, children or vars under it"
                )))
            }
        };
        for (key, value) in body {
            match scalar(&key).as_str() {
                "hosts" => {
                    let hosts = match value {
                        Value::Mapping(m) => m,
                        Value::Null => continue,
                        _ => {
                            return Err(AnsibleError::Invalid(format!(
                                "group {group}: hosts is a mapping of host names"
                            )))
                        }
                    };
                    for (name, vars) in hosts {
                        let name = scalar(&name);
                        let vars = host_vars(&name, vars)?;
                        book.add(&name, Some(&group), &vars)
                            .map_err(AnsibleError::Invalid)?;
                    }
                }
                "children" => {
                    let kids = match value {
                        Value::Mapping(m) => m,
                        Value::Null => continue,
                        _ => {
                            return Err(AnsibleError::Invalid(format!(
                                "group {group}: children is a mapping of groups"
                            )))
                        }
                    };
                    for (kid, kid_body) in kids {
                        let kid = scalar(&kid);
                        book.children
                            .entry(group.clone())
                            .or_default()
                            .insert(kid.clone());
                        todo.push((kid, kid_body, depth + 1));
                    }
                }
                "vars" => {
                    book.groups_with_vars.insert(group.clone());
                }
                other => {
                    return Err(AnsibleError::Invalid(format!(
                        "group {group}: \"{other}\" is not hosts, children or vars"
                    )))
                }
            }
        }
    }
    Ok(())
}

/// A host's variables as attributes: scalars as text; lists and mappings are refused.
fn host_vars(host: &str, vars: yaml_serde::Value) -> Result<Vec<(String, String)>, AnsibleError> {
    use yaml_serde::Value;
    let map = match vars {
        Value::Null => return Ok(Vec::new()),
        Value::Mapping(m) => m,
        _ => {
            return Err(AnsibleError::Invalid(format!(
                "host {host}: its variables are a mapping"
            )))
        }
    };
    let mut out = Vec::new();
    for (key, value) in map {
        let key = scalar(&key);
        if matches!(value, Value::Sequence(_) | Value::Mapping(_)) {
            return Err(AnsibleError::Invalid(format!(
                "host {host}: variable {key} is a list or mapping; attributes are single values"
            )));
        }
        let value = scalar(&value);
        inventory::check_attribute(&key, &value)
            .map_err(|e| AnsibleError::Invalid(format!("host {host}: {e}")))?;
        out.push((key, value));
    }
    Ok(out)
}

/// A YAML scalar as text (a number, a boolean, a string); anything else as empty.
fn scalar(value: &yaml_serde::Value) -> String {
    use yaml_serde::Value;
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Tagged(t) => scalar(&t.value),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn groups_of<'a>(imported: &'a Imported, host: &str) -> Vec<&'a str> {
        imported
            .hosts
            .iter()
            .find(|h| h.name == host)
            .unwrap_or_else(|| panic!("no host {host} in {imported:?}"))
            .groups
            .iter()
            .map(String::as_str)
            .collect()
    }

    const INI: &str = "\
mail.example.com

[webservers]
foo.example.com http_port=80 maxRequestsPerChild=808
bar.example.com  # a comment
www[01:03].example.com

[dbservers]
one.example.com
two.example.com ansible_host=10.0.0.2

[eu:children]
webservers

[prod:children]
eu
dbservers

[webservers:vars]
ntp_server=ntp.example.com
";

    #[test]
    fn ini_hosts_groups_children_ranges_and_variables() {
        let imported = read(INI, Format::Ini).unwrap();
        assert_eq!(imported.hosts.len(), 8);
        assert_eq!(imported.groups_with_vars, 1);
        assert!(groups_of(&imported, "mail.example.com").is_empty());
        assert_eq!(
            groups_of(&imported, "foo.example.com"),
            ["eu", "prod", "webservers"]
        );
        assert_eq!(
            groups_of(&imported, "www02.example.com"),
            ["eu", "prod", "webservers"]
        );
        assert_eq!(
            groups_of(&imported, "two.example.com"),
            ["dbservers", "prod"]
        );
        let foo = imported
            .hosts
            .iter()
            .find(|h| h.name == "foo.example.com")
            .unwrap();
        assert_eq!(foo.attributes["http_port"], "80");
        assert_eq!(foo.attributes.len(), 2);
    }

    #[test]
    fn yaml_reads_the_same_inventory() {
        let yaml = "\
all:
  hosts:
    mail.example.com:
  children:
    prod:
      children:
        eu:
          children:
            webservers:
              hosts:
                foo.example.com:
                  http_port: 80
                www[01:03].example.com:
              vars:
                ntp_server: ntp.example.com
        dbservers:
          hosts:
            two.example.com:
              ansible_host: 10.0.0.2
";
        let imported = read(yaml, Format::Yaml).unwrap();
        assert_eq!(imported.hosts.len(), 6);
        assert!(groups_of(&imported, "mail.example.com").is_empty());
        assert_eq!(
            groups_of(&imported, "www03.example.com"),
            ["eu", "prod", "webservers"]
        );
        assert_eq!(
            groups_of(&imported, "two.example.com"),
            ["dbservers", "prod"]
        );
        let foo = imported
            .hosts
            .iter()
            .find(|h| h.name == "foo.example.com")
            .unwrap();
        assert_eq!(foo.attributes["http_port"], "80");
        assert_eq!(imported.groups_with_vars, 1);
    }

    #[test]
    fn bad_inventories_are_named_with_their_line_and_never_expand_past_the_bound() {
        let cases = [
            ("[web\nhost", "line 1: a section header ends with ]"),
            ("[web:stuff]\n", "line 1: [web:stuff]: a section is"),
            (
                "[web]\nhost port:22\n",
                "line 2: \"port:22\": host variables are written key=value",
            ),
            (
                "[web]\nweb;reboot\n",
                "line 2: \"web;reboot\" is not a host name",
            ),
            ("[web]\nweb[1:999999999].x\n", "stands for 999999999 hosts"),
            ("[web]\nweb[9:1].x\n", "first not past last"),
            ("[we b]\n", "line 1: \"we b\" is not a group name"),
        ];
        for (text, expected) in cases {
            let err = read(text, Format::Ini).unwrap_err().to_string();
            assert!(
                err.starts_with(expected) || err.contains(expected),
                "{text:?}: {err}"
            );
        }
        let big = "x".repeat(MAX_SOURCE + 1);
        assert_eq!(
            read(&big, Format::Ini),
            Err(AnsibleError::TooLarge(MAX_SOURCE + 1))
        );
        assert!(matches!(
            read("all: [1, 2", Format::Yaml),
            Err(AnsibleError::Yaml(_))
        ));
        let err = read("all:\n  hosts:\n    h:\n      list: [1, 2]\n", Format::Yaml).unwrap_err();
        assert!(err.to_string().contains("is a list or mapping"), "{err}");
        // Ranges together past the bound are refused too.
        let text = "[a]\nh[1:6000]\n[b]\ng[1:6000]\n";
        let err = read(text, Format::Ini).unwrap_err().to_string();
        assert!(err.contains("the inventory holds at most 10000"), "{err}");
    }

    #[test]
    fn a_yaml_alias_bomb_is_refused_not_expanded() {
        let bomb = "\
a: &a [x, x, x, x, x, x, x, x, x, x]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]
";
        let err = read(bomb, Format::Yaml).unwrap_err();
        assert!(matches!(err, AnsibleError::Yaml(_)), "{err}");
    }
}
