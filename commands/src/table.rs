//! `CommandTable`: the compiled catalog plus what acts on each match (what runs the
//! command, who may, how long it may take), and the one step from a match to a `Job`.
//!
//! Built-in commands ([`crate::builtin::DECLARATIONS`]) are compiled into one catalog
//! with the commands of `octobox.toml`, so a configured command that clashes with a
//! built-in is reported like any other clash.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use config::{
    fill_template, AllowEntry, ApprovalConfig, Config, ConfigError, ConfigErrors, ContainerCommand,
    FanOutConfig, Runs,
};
use jobs::{Job, Origin, Task};
use lexicon::{Catalog, Classification, Match};

use crate::builtin::{Builtin, DECLARATIONS, DECLARATIONS_SOURCE};

/// The native tasks a worker of this build runs, and the slots each reads: what a
/// configuration is checked against when the checking process runs the worker too.
#[derive(Debug, Clone, Default)]
pub struct NativeTasks {
    params: BTreeMap<String, Vec<String>>,
}

impl NativeTasks {
    /// `(task name, the slots it reads)` pairs.
    pub fn new<'a>(tasks: impl IntoIterator<Item = (&'a str, &'a [&'a str])>) -> Self {
        NativeTasks {
            params: tasks
                .into_iter()
                .map(|(name, params)| {
                    (
                        name.to_string(),
                        params.iter().map(|p| p.to_string()).collect(),
                    )
                })
                .collect(),
        }
    }

    fn params(&self, task: &str) -> Option<&[String]> {
        self.params.get(task).map(Vec::as_slice)
    }

    fn names(&self) -> impl Iterator<Item = &str> {
        self.params.keys().map(String::as_str)
    }
}

/// Why a text does not make a job (a schedule's `run`, a rerun).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotAJob {
    #[error("is empty")]
    Empty,
    /// Not a command, or a bad argument: the lexicon's own sentence.
    #[error("\"{text}\": {reason}")]
    NotUnderstood { text: String, reason: String },
    /// Cannot happen: the table is built from the same declarations as its catalog.
    #[error("\"{command}\" has nothing to run it")]
    NothingRunsIt { command: String },
    #[error("\"{command}\" is answered by the bot at once, not run as a job: schedule a command that runs a task")]
    AnsweredAtOnce { command: String },
    #[error("\"{command}\" runs once per host of a group (fan_out), which a schedule cannot start yet: schedule a command for one host")]
    FanOut { command: String },
    /// A value the command's container would read as an option.
    #[error(transparent)]
    OptionLikeValue(#[from] OptionLikeValue),
}

/// A slot's value that starts with `-` and would reach a container's argv, where the
/// program would read it as an option (`--help`, `-oProxyCommand=...`, `--output=/x`)
/// rather than the host or name it asked for. Refused unless the command's container
/// table says `dash_values = true`: a pattern's slot types cannot know which values a
/// given program takes as options, so the safe answer is none.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("\"{value}\" starts with \"-\" and would reach the program as an option; this command does not take such values")]
pub struct OptionLikeValue {
    /// The slot the value was given for.
    pub slot: String,
    pub value: String,
}

/// What to do once a message has matched a command.
#[derive(Debug, Clone)]
pub struct CommandAction {
    pub runs: Executor,
    pub allow: Option<Vec<AllowEntry>>,
    pub timeout: Duration,
    /// Jobs of this command queued or running at once, everyone's together.
    pub max_running: Option<u32>,
    /// Jobs of this command started per minute, everyone's together.
    pub max_per_minute: Option<u32>,
    /// Its jobs wait for a second person's yes.
    pub approval: Option<ApprovalConfig>,
    /// It names an inventory group and runs once per host.
    pub fan_out: Option<FanOutConfig>,
}

impl CommandAction {
    /// Whether a job of this command is given argument `name`: a slot of `def`'s
    /// pattern, or the host argument of a fan-out's jobs.
    fn gives(&self, def: &lexicon::CommandDef, name: &str) -> bool {
        def.slots().iter().any(|s| s.name == name)
            || self.fan_out.as_ref().is_some_and(|f| f.host == name)
    }
}

/// What runs a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Executor {
    Builtin(Builtin),
    Native(String),
    /// A container job; its argv and env templates are filled from the arguments.
    Container(Box<ContainerCommand>),
}

impl Executor {
    /// The task a match runs as a job: `None` for a built-in, answered at once; an error
    /// for a value the task must not be given ([`OptionLikeValue`]). The one place a
    /// command becomes a task, for people (the router) and schedules alike.
    pub fn task_checked(&self, m: &Match) -> Result<Option<Task>, OptionLikeValue> {
        match self {
            Executor::Builtin(_) => Ok(None),
            Executor::Native(name) => Ok(Some(Task::native(name))),
            Executor::Container(c) => container_task(c, m).map(Some),
        }
    }
}

/// The container task for a match (see [`fill_container_task`]), unless a slot that
/// argv refers to has a value starting with `-` and the table does not allow it
/// (`dash_values`). Only argv is checked: an environment value is never parsed as an
/// option.
fn container_task(c: &ContainerCommand, m: &Match) -> Result<Task, OptionLikeValue> {
    if !c.dash_values {
        for slot in c.argv.iter().flat_map(|t| config::template_slots(t)) {
            if let Some(value) = m.args.get(&slot) {
                if value.reveal().starts_with('-') {
                    // Quoted as shown: a secret stays masked.
                    let value = value.to_string();
                    return Err(OptionLikeValue { slot, value });
                }
            }
        }
    }
    Ok(fill_container_task(c, m))
}

/// The container task for a match: each argv element and env value is its template with
/// the arguments filled in, one whole value each, never read by a shell. An element that
/// is only an optional slot left out is dropped rather than passed empty.
fn fill_container_task(c: &ContainerCommand, m: &Match) -> Task {
    // The one place a secret's text is let out: into the task it is for.
    let value = |slot: &str| m.args.get(slot).map(|v| v.reveal().into_owned());
    let argv = c
        .argv
        .iter()
        .filter(
            |t| match t.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
                Some(slot) => config::template_slots(t).len() != 1 || m.args.contains_key(slot),
                None => true,
            },
        )
        .map(|t| fill_template(t, value))
        .collect();
    let env = c
        .env
        .iter()
        .map(|(k, t)| (k.clone(), fill_template(t, value)))
        .collect();
    Task::Container {
        image: c.image.clone(),
        argv,
        env,
        limits: c.limits.clone(),
    }
}

#[derive(Debug, Clone)]
pub struct CommandTable {
    pub catalog: Catalog,
    actions: HashMap<String, CommandAction>,
}

impl CommandTable {
    /// Compiles the built-ins and `config`'s commands. `tasks`, when given, are the
    /// native tasks this process runs (embedded mode): a command naming another task, or
    /// lacking a slot its task reads, is an error.
    pub fn build(config: &Config, tasks: Option<&NativeTasks>) -> Result<Self, ConfigErrors> {
        let builtins = Config::parse(DECLARATIONS_SOURCE, DECLARATIONS, |_| None)?;
        let day_one = crate::day_one::declarations(&config.tasks)?;
        let declared: Vec<_> = builtins
            .commands
            .iter()
            .chain(&day_one.commands)
            .chain(&config.commands)
            .collect();
        let at = |index: usize, message: String| -> ConfigError {
            let (b, d) = (builtins.commands.len(), day_one.commands.len());
            match index {
                i if i < b => builtins.command_error(i, message),
                i if i < b + d => day_one.command_error(i - b, message),
                i => config.command_error(i - b - d, message),
            }
        };

        let mut errors = Vec::new();
        let mut actions = Vec::with_capacity(declared.len());
        for (i, c) in declared.iter().enumerate() {
            let runs = match &c.runs {
                Runs::Builtin(name) => match name.parse::<Builtin>() {
                    Ok(b) => Some(Executor::Builtin(b)),
                    Err(e) => {
                        errors.push(at(i, e.to_string()));
                        None
                    }
                },
                Runs::Native(task) if config.tasks.enabled(task) == Some(false) => {
                    errors.push(at(
                        i,
                        format!(
                            "native task \"{task}\" is switched off in this file \
                             ([tasks.{task}] enabled = false)"
                        ),
                    ));
                    None
                }
                Runs::Native(task) => match tasks {
                    Some(registry) if registry.params(task).is_none() => {
                        let known: Vec<_> = registry.names().collect();
                        errors.push(at(
                            i,
                            format!(
                                "no native task \"{task}\" in this build (it has: {})",
                                known.join(", ")
                            ),
                        ));
                        None
                    }
                    _ => Some(Executor::Native(task.clone())),
                },
                Runs::Container(c) => Some(Executor::Container(c.clone())),
            };
            actions.push(runs.map(|runs| CommandAction {
                runs,
                allow: c.allow.clone(),
                timeout: c.timeout.unwrap_or(config.jobs.timeout),
                max_running: c.max_running,
                max_per_minute: c.max_per_minute,
                approval: c.approval.clone(),
                fan_out: c.fan_out.clone(),
            }));
        }

        let catalog = Catalog::build(declared.iter().map(|c| c.spec()).collect());
        let catalog = match catalog {
            Ok(catalog) => Some(catalog),
            Err(problems) => {
                errors.extend(problems.into_iter().map(|p| match p.index {
                    Some(i) => at(i, p.message),
                    None => ConfigError {
                        file: config.source.clone(),
                        line: None,
                        key: "command".into(),
                        message: p.message,
                    },
                }));
                None
            }
        };
        if let Some(catalog) = &catalog {
            errors.extend(unknown_slots(catalog, &actions, &at));
            errors.extend(secrets_awaiting_approval(catalog, &actions, &at));
            errors.extend(fan_out_slots(catalog, &actions, &at));
        }
        if let (Some(catalog), Some(registry)) = (&catalog, tasks) {
            for def in catalog.commands() {
                let Some(Some(
                    action @ CommandAction {
                        runs: Executor::Native(task),
                        ..
                    },
                )) = actions.get(def.index())
                else {
                    continue;
                };
                let missing: Vec<_> = registry
                    .params(task)
                    .unwrap_or_default()
                    .iter()
                    .filter(|p| !action.gives(def, p))
                    .map(|p| format!("{{{p}}}"))
                    .collect();
                if !missing.is_empty() {
                    errors.push(at(
                        def.index(),
                        format!(
                            "native task \"{task}\" reads {}, but pattern \"{}\" has no such slot",
                            missing.join(" and "),
                            def.pattern()
                        ),
                    ));
                }
            }
        }
        match catalog {
            Some(catalog) if errors.is_empty() => {
                let actions = catalog
                    .commands()
                    .zip(actions)
                    .filter_map(|(def, a)| Some((def.name().to_string(), a?)))
                    .collect();
                Ok(CommandTable { catalog, actions })
            }
            _ => Err(ConfigErrors(errors)),
        }
    }

    pub fn action(&self, command: &str) -> Option<&CommandAction> {
        self.actions.get(command)
    }

    /// The names of the commands that make jobs (every one but the built-ins).
    pub fn job_commands(&self) -> impl Iterator<Item = &str> {
        self.actions
            .iter()
            .filter(|(_, action)| !matches!(action.runs, Executor::Builtin(_)))
            .map(|(name, _)| name.as_str())
    }

    /// The job `text` queues for `origin`, exactly as for a person typing it: what a
    /// schedule fires. Built-ins are answered at once and make no job.
    pub fn job_for(&self, text: &str, origin: Origin) -> Result<Job, NotAJob> {
        let m = match self.catalog.classify(text) {
            Classification::Matched(m) => m,
            Classification::Empty => return Err(NotAJob::Empty),
            other => {
                return Err(NotAJob::NotUnderstood {
                    text: text.to_string(),
                    reason: other.to_string(),
                })
            }
        };
        let Some(action) = self.action(&m.command) else {
            return Err(NotAJob::NothingRunsIt { command: m.command });
        };
        if action.fan_out.is_some() {
            return Err(NotAJob::FanOut { command: m.command });
        }
        match action.runs.task_checked(&m)? {
            Some(task) => Ok(Job::new(m.command, m.args, task, origin, action.timeout)),
            None => Err(NotAJob::AnsweredAtOnce { command: m.command }),
        }
    }
}

/// `{slot}` references in container argv and env that name no slot of the pattern.
fn unknown_slots(
    catalog: &Catalog,
    actions: &[Option<CommandAction>],
    at: &dyn Fn(usize, String) -> ConfigError,
) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    for def in catalog.commands() {
        let Some(Some(
            action @ CommandAction {
                runs: Executor::Container(c),
                ..
            },
        )) = actions.get(def.index())
        else {
            continue;
        };
        for (key, slot) in c.slot_references() {
            if !action.gives(def, &slot) {
                let have: Vec<_> = def
                    .slots()
                    .iter()
                    .map(|s| format!("{{{}}}", s.name))
                    .collect();
                errors.push(at(
                    def.index(),
                    format!(
                        "{key} refers to {{{slot}}}, but pattern \"{}\" has no such slot (it has: {})",
                        def.pattern(),
                        if have.is_empty() { "none".to_string() } else { have.join(", ") }
                    ),
                ));
            }
        }
    }
    errors
}

/// A fan-out's group is a slot of its pattern; the host argument is not (it would be
/// given twice).
fn fan_out_slots(
    catalog: &Catalog,
    actions: &[Option<CommandAction>],
    at: &dyn Fn(usize, String) -> ConfigError,
) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    for def in catalog.commands() {
        let Some(Some(CommandAction {
            fan_out: Some(fan_out),
            ..
        })) = actions.get(def.index())
        else {
            continue;
        };
        let slots: Vec<_> = def.slots().iter().map(|s| s.name.as_str()).collect();
        if !slots.contains(&fan_out.group.as_str()) {
            errors.push(at(
                def.index(),
                format!(
                    "fan_out.group is \"{}\", but pattern \"{}\" has no such slot: name the \
                     slot that holds the group, e.g. \"deploy to group {{group:name}}\"",
                    fan_out.group,
                    def.pattern()
                ),
            ));
        }
        if slots.contains(&fan_out.host.as_str()) {
            errors.push(at(
                def.index(),
                format!(
                    "fan_out.host is \"{}\", a slot of pattern \"{}\" already: each job gets \
                     its host in that argument, so name another (fan_out = {{ group = \"...\", \
                     host = \"target\" }})",
                    fan_out.host,
                    def.pattern()
                ),
            ));
        }
    }
    errors
}

/// A command that waits for approval keeps its job in the store meanwhile, and the store
/// keeps no secrets: such a command cannot have a `secret` slot.
fn secrets_awaiting_approval(
    catalog: &Catalog,
    actions: &[Option<CommandAction>],
    at: &dyn Fn(usize, String) -> ConfigError,
) -> Vec<ConfigError> {
    catalog
        .commands()
        .filter(|def| {
            actions
                .get(def.index())
                .is_some_and(|a| a.as_ref().is_some_and(|a| a.approval.is_some()))
        })
        .filter_map(|def| {
            let secret = def
                .slots()
                .iter()
                .find(|s| s.kind == lexicon::SlotKind::Secret)?;
            Some(at(
                def.index(),
                format!(
                    "has approval and a secret slot {{{}}}: a job waiting for approval is \
                     kept in the store, which never keeps secrets; pass the secret another \
                     way (the worker's environment) or drop the approval",
                    secret.name
                ),
            ))
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// `text` with a stated access default, appended so that line numbers stay.
    fn config(text: &str) -> Config {
        let text = format!("{text}\n[acl]\ndefault = \"allow\"\n");
        Config::parse("octobox.toml", &text, |_| None).unwrap()
    }

    /// The native tasks of a standard worker.
    pub(crate) fn standard_tasks() -> NativeTasks {
        NativeTasks::new([
            ("echo", &["text"][..]),
            ("sleep", &["for"][..]),
            ("dns", &["name"][..]),
            ("whois", &["query"][..]),
            ("http_check", &["url"][..]),
            ("tls_expiry", &["target"][..]),
            ("walk_site", &["url", "depth"][..]),
        ])
    }

    #[test]
    fn day_one_commands_are_there_unless_switched_off() {
        let table = CommandTable::build(&config(""), Some(&standard_tasks())).unwrap();
        for (command, task) in [
            ("dns", "dns"),
            ("whois", "whois"),
            ("http check", "http_check"),
            ("tls expiry", "tls_expiry"),
            ("walk site", "walk_site"),
        ] {
            let action = table.action(command).unwrap();
            assert_eq!(action.runs, Executor::Native(task.into()), "{command}");
            assert_eq!(action.allow, Some(vec![AllowEntry::Everyone]));
        }
        let job = table
            .job_for("dns example.com mx", Origin::new("console", "t"))
            .unwrap();
        assert_eq!(job.args["type"].to_string(), "MX");
        let job = table
            .job_for(
                "walk site https://example.com/ 3",
                Origin::new("console", "t"),
            )
            .unwrap();
        assert_eq!(job.args["url"].to_string(), "https://example.com/");
        assert_eq!(job.args["depth"], lexicon::Value::Int(3));
        let job = table
            .job_for(
                "walk site https://example.com/",
                Origin::new("console", "t"),
            )
            .unwrap();
        assert!(!job.args.contains_key("depth"), "{:?}", job.args);
        let e = table
            .job_for(
                "walk site https://example.com/ 11",
                Origin::new("console", "t"),
            )
            .unwrap_err()
            .to_string();
        assert!(e.contains("from 0 to 10"), "{e}");

        let off = config("[tasks.dns]\nenabled = false\n[tasks.whois]\nenabled = false\n");
        let table = CommandTable::build(&off, Some(&standard_tasks())).unwrap();
        assert!(table.action("dns").is_none());
        assert!(table.action("whois").is_none());
        assert!(table.action("http check").is_some());
    }

    #[test]
    fn a_command_naming_a_switched_off_task_is_refused_and_a_clash_names_both() {
        let c = config(
            "[tasks.dns]\nenabled = false\n\n[[command]]\npattern = \"lookup {name:word}\"\n\
             help = \"Looks up\"\nnative = \"dns\"\n",
        );
        let text = CommandTable::build(&c, None).unwrap_err().to_string();
        assert!(
            text.contains("octobox.toml:4: command[1]: native task \"dns\" is switched off in this file ([tasks.dns] enabled = false)"),
            "{text}"
        );
        let c = config(
            "[[command]]\npattern = \"whois {domain:word}\"\nhelp = \"Mine\"\nnative = \"echo\"\n",
        );
        let text = CommandTable::build(&c, None).unwrap_err().to_string();
        assert!(text.contains("whois {query:word}"), "{text}");
    }

    #[test]
    fn builtins_compile_and_every_example_is_its_own_command() {
        let registry = standard_tasks();
        let table = CommandTable::build(&Config::default(), Some(&registry)).unwrap();
        for def in table.catalog.commands() {
            assert!(
                table.action(def.name()).is_some(),
                "{} has no action",
                def.name()
            );
        }
        assert!(table.catalog.get("ping").is_some());
    }

    #[test]
    fn a_clash_with_a_builtin_names_the_configured_line() {
        let c =
            config("\n[[command]]\npattern = \"ping\"\nhelp = \"My ping\"\nnative = \"echo\"\n");
        let errors = CommandTable::build(&c, None).unwrap_err().0;
        assert!(
            errors
                .iter()
                .any(|e| e.file == "octobox.toml" || e.file == "built-in commands"),
            "{errors:?}"
        );
        assert!(!errors.is_empty());
    }

    #[test]
    fn unknown_builtins_and_tasks_are_refused() {
        let c = config(
            "[[command]]\npattern = \"greet\"\nhelp = \"Greets\"\nbuiltin = \"greet\"\n\n\
             [[command]]\npattern = \"deploy {s:name}\"\nhelp = \"Deploys\"\nnative = \"deploy\"\n",
        );
        let errors = CommandTable::build(&c, Some(&standard_tasks())).unwrap_err();
        let text = errors.to_string();
        assert!(
            text.contains("octobox.toml:1: command[1]: no built-in command \"greet\""),
            "{text}"
        );
        assert!(
            text.contains("octobox.toml:6: command[2]: no native task \"deploy\""),
            "{text}"
        );
    }

    #[test]
    fn a_command_must_declare_the_slots_its_task_reads() {
        let c = config("[[command]]\npattern = \"deploy {service:name}\"\nhelp = \"Deploys\"\nnative = \"echo\"\n");
        let text = CommandTable::build(&c, Some(&standard_tasks()))
            .unwrap_err()
            .to_string();
        assert!(
            text.contains("octobox.toml:1: command[1]: native task \"echo\" reads {text}, but pattern \"deploy {service:name}\" has no such slot"),
            "{text}"
        );
    }

    #[test]
    fn a_fan_out_names_its_group_slot_and_gives_its_jobs_the_host() {
        // echo reads {text}: the host argument gives it; a container reads {host}.
        let c = config(
            "[[command]]\npattern = \"shout at group {g:name}\"\nhelp = \"S\"\nnative = \"echo\"\n\
             fan_out = { group = \"g\", host = \"text\" }\n\n\
             [[command]]\npattern = \"ping group {g:name}\"\nhelp = \"P\"\n\
             container = { image = \"probe\", argv = [\"ping\", \"{host}\"] }\nfan_out = { group = \"g\" }\n",
        );
        let table = CommandTable::build(&c, Some(&standard_tasks())).unwrap();
        assert!(table.action("ping group").unwrap().fan_out.is_some());
        let err = table
            .job_for("ping group web", Origin::new("scheduler", "nightly"))
            .unwrap_err();
        assert!(matches!(err, NotAJob::FanOut { .. }), "{err}");

        let c = config(
            "[[command]]\npattern = \"a {g:name}\"\nhelp = \"A\"\nnative = \"echo\"\n\
             fan_out = { group = \"group\", host = \"text\" }\n\n\
             [[command]]\npattern = \"b {g:name} {host:word}\"\nhelp = \"B\"\n\
             container = { image = \"probe\", argv = [\"{host}\"] }\nfan_out = { group = \"g\" }\n",
        );
        let text = CommandTable::build(&c, Some(&standard_tasks()))
            .unwrap_err()
            .to_string();
        assert!(
            text.contains("command[1]: fan_out.group is \"group\", but pattern \"a {g:name}\" has no such slot"),
            "{text}"
        );
        assert!(
            text.contains("command[2]: fan_out.host is \"host\", a slot of pattern"),
            "{text}"
        );
    }

    #[test]
    fn container_templates_must_name_slots_of_the_pattern() {
        let c = config(
            "[[command]]\npattern = \"scan {host:hostname}\"\nhelp = \"Scans\"\n\
             container = { image = \"scan:1\", argv = [\"--fast\", \"{hots}\"], env = { T = \"{host}\" } }\n",
        );
        let text = CommandTable::build(&c, None).unwrap_err().to_string();
        assert!(
            text.contains("octobox.toml:1: command[1]: container.argv[2] refers to {hots}, but pattern \"scan {host:hostname}\" has no such slot (it has: {host})"),
            "{text}"
        );
        assert!(!text.contains("container.env"), "{text}");
    }

    #[test]
    fn a_bad_pattern_names_its_line() {
        let c = config(
            "\n\n[[command]]\npattern = \"add {x:ipv9}\"\nhelp = \"Adds\"\nnative = \"echo\"\n",
        );
        let text = CommandTable::build(&c, None).unwrap_err().to_string();
        assert!(text.contains("octobox.toml:3: command[1]: "), "{text}");
        assert!(text.contains("ipv9"), "{text}");
    }

    /// A `run {what:word}` command whose container reads `what` in argv (as `argv`
    /// says) and `TARGET` in env, with `extra` added to its table.
    fn run_table(argv: &str, extra: &str) -> CommandTable {
        let c = config(&format!(
            "[[command]]\npattern = \"run {{what:word}}\"\nhelp = \"Runs\"\n\
             container = {{ image = \"run:1\", argv = {argv}, env = {{ TARGET = \"{{what}}\" }}{extra} }}\n"
        ));
        CommandTable::build(&c, None).unwrap()
    }

    fn job(table: &CommandTable, text: &str) -> Result<Job, NotAJob> {
        table.job_for(text, Origin::new("console", "alice"))
    }

    #[test]
    fn values_starting_with_a_dash_never_reach_argv_as_options() {
        let table = run_table("[\"--fast\", \"{what}\"]", "");
        for value in ["--help", "-oProxyCommand=x", "-"] {
            let err = job(&table, &format!("run {value}")).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("\"{value}\" starts with \"-\" and would reach the program as an option; this command does not take such values")
            );
            assert!(
                matches!(err, NotAJob::OptionLikeValue(OptionLikeValue { ref slot, .. }) if slot == "what")
            );
        }
        // Inside a larger element too: the program still sees the dash first.
        let inside = run_table("[\"{what}.txt\"]", "");
        assert!(job(&inside, "run --help").is_err());
        assert!(job(&table, "run db-1").is_ok());
        assert!(job(&table, "run a-b").is_ok());

        let allowed = run_table("[\"--fast\", \"{what}\"]", ", dash_values = true");
        let Task::Container { argv, .. } = job(&allowed, "run --help").unwrap().task else {
            panic!("a container task");
        };
        assert_eq!(argv, ["--fast", "--help"]);
    }

    #[test]
    fn a_value_read_only_from_the_environment_may_start_with_a_dash() {
        let table = run_table("[\"--fast\"]", "");
        let Task::Container { argv, env, .. } = job(&table, "run --help").unwrap().task else {
            panic!("a container task");
        };
        assert_eq!(argv, ["--fast"]);
        assert_eq!(env.get("TARGET").map(String::as_str), Some("--help"));
    }
}
