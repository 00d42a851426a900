//! `CommandTable`: the compiled catalog plus what the bot needs to act on a match (what
//! runs the command, who may, how long it may take).
//!
//! Built-in commands come from `builtins.toml`, declared exactly like configured ones,
//! and are compiled into one catalog with the commands of `octobox.toml`, so a
//! configured command that clashes with a built-in is reported like any other clash.

use std::collections::HashMap;
use std::time::Duration;

use config::{
    fill_template, AllowEntry, Config, ConfigError, ConfigErrors, ContainerCommand, Runs,
};
use jobs::Task;
use lexicon::{Catalog, Match};

use worker::TaskRegistry;

use crate::builtins::Builtin;

/// The declarations of the built-in commands.
pub const BUILTINS: &str = include_str!("builtins.toml");

/// What to do once a message has matched a command.
#[derive(Debug, Clone)]
pub struct CommandAction {
    pub runs: Action,
    pub allow: Option<Vec<AllowEntry>>,
    pub timeout: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Builtin(Builtin),
    Native(String),
    /// A container job; its argv and env templates are filled from the arguments.
    Container(Box<ContainerCommand>),
}

impl Action {
    /// The task a match runs as a job: `None` for a built-in, answered at once. The one
    /// place a command becomes a task, for people (the router) and schedules alike.
    pub fn task_for(&self, m: &Match) -> Option<Task> {
        match self {
            Action::Builtin(_) => None,
            Action::Native(name) => Some(Task::native(name)),
            Action::Container(c) => Some(container_task(c, m)),
        }
    }
}

/// The container task for a match: each argv element and env value is its template with
/// the arguments filled in, one whole value each, never read by a shell. An element that
/// is only an optional slot left out is dropped rather than passed empty.
fn container_task(c: &ContainerCommand, m: &Match) -> Task {
    let value = |slot: &str| m.args.get(slot).map(|v| v.to_string());
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
    pub fn build(config: &Config, tasks: Option<&TaskRegistry>) -> Result<Self, ConfigErrors> {
        let builtins = Config::parse("built-in commands", BUILTINS, |_| None)?;
        let declared: Vec<_> = builtins.commands.iter().chain(&config.commands).collect();
        let at = |index: usize, message: String| -> ConfigError {
            match index.checked_sub(builtins.commands.len()) {
                Some(i) => config.command_error(i, message),
                None => builtins.command_error(index, message),
            }
        };

        let mut errors = Vec::new();
        let mut actions = Vec::with_capacity(declared.len());
        for (i, c) in declared.iter().enumerate() {
            let runs = match &c.runs {
                Runs::Builtin(name) => match name.parse::<Builtin>() {
                    Ok(b) => Some(Action::Builtin(b)),
                    Err(e) => {
                        errors.push(at(i, e));
                        None
                    }
                },
                Runs::Native(task) => match tasks {
                    Some(registry) if registry.get(task).is_none() => {
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
                    _ => Some(Action::Native(task.clone())),
                },
                Runs::Container(c) => Some(Action::Container(c.clone())),
            };
            actions.push(runs.map(|runs| CommandAction {
                runs,
                allow: c.allow.clone(),
                timeout: c.timeout.unwrap_or(config.jobs.timeout),
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
        }
        if let (Some(catalog), Some(registry)) = (&catalog, tasks) {
            for def in catalog.commands() {
                let Some(Some(CommandAction {
                    runs: Action::Native(task),
                    ..
                })) = actions.get(def.index())
                else {
                    continue;
                };
                let missing: Vec<_> = registry
                    .params(task)
                    .unwrap_or_default()
                    .iter()
                    .filter(|p| !def.slots().iter().any(|s| s.name == **p))
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
}

/// `{slot}` references in container argv and env that name no slot of the pattern.
fn unknown_slots(
    catalog: &Catalog,
    actions: &[Option<CommandAction>],
    at: &dyn Fn(usize, String) -> ConfigError,
) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    for def in catalog.commands() {
        let Some(Some(CommandAction {
            runs: Action::Container(c),
            ..
        })) = actions.get(def.index())
        else {
            continue;
        };
        for (key, slot) in c.slot_references() {
            if !def.slots().iter().any(|s| s.name == slot) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Config {
        Config::parse("octobox.toml", text, |_| None).unwrap()
    }

    #[test]
    fn builtins_compile_and_every_example_is_its_own_command() {
        let registry = TaskRegistry::standard();
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
        let errors = CommandTable::build(&c, Some(&TaskRegistry::standard())).unwrap_err();
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
        let text = CommandTable::build(&c, Some(&TaskRegistry::standard()))
            .unwrap_err()
            .to_string();
        assert!(
            text.contains("octobox.toml:1: command[1]: native task \"echo\" reads {text}, but pattern \"deploy {service:name}\" has no such slot"),
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
}
