//! What a person editing `octobox.toml` sees: valid files load, each mistake is named
//! with its line and key.

use crate::*;

fn env(name: &str) -> Option<String> {
    match name {
        "MQ_PASSWORD" => Some("hunter2".into()),
        "SIGNING_KEY" => Some("k".repeat(32) + "-hunter3"),
        "OLD_SIGNING_KEY" => Some("o".repeat(32)),
        "SHORT_KEY" => Some("hunter4".into()),
        "REDIS_PASSWORD" => Some("hunter5".into()),
        "SENTINEL_PASSWORD" => Some("hunter6".into()),
        "API_TOKEN" => Some("t".repeat(40)),
        _ => None,
    }
}

fn parse(text: &str) -> Result<Config, ConfigErrors> {
    Config::parse("octobox.toml", text, env)
}

fn errors(text: &str) -> Vec<String> {
    parse(text)
        .expect_err("expected errors")
        .0
        .iter()
        .map(|e| e.to_string())
        .collect()
}

#[test]
fn an_empty_file_is_embedded_with_defaults() {
    let c = parse("").unwrap();
    assert!(c.is_embedded());
    assert_eq!(c.bot.name, "octobot");
    assert_eq!(c.acl.default, None, "access is never assumed");
    assert_eq!(c.jobs.timeout, Duration::from_secs(600));
    assert_eq!(c.worker.concurrency, 8);
    assert_eq!(c.jobs.retries, 2);
}

#[test]
fn limits_out_of_range_are_refused() {
    let e = errors(
        "[jobs]\nretries = -1\nretry_backoff = \"0s\"\n[broker]\nurl = \"amqp://h\"\ndelivery_limit = 0\n[store]\nurl = \"redis://h\"\nretention = \"forever\"\n",
    );
    let all = e.join("\n");
    assert!(
        all.contains(":2: jobs.retries: -1 is not a whole number from 0 to 100"),
        "{all}"
    );
    assert!(
        all.contains(":3: jobs.retry_backoff: must be longer than 0s"),
        "{all}"
    );
    assert!(
        all.contains(":6: broker.delivery_limit: 0 is not a whole number from 1 to 1000"),
        "{all}"
    );
    assert!(
        all.contains(":9: store.retention: \"forever\" is not a duration"),
        "{all}"
    );
}

#[test]
fn a_full_file_loads() {
    let c = parse(
        r#"
[bot]
name = "opsbot"

[acl]
default = "deny"
[acl.groups]
oncall = ["console:alice", "slack:U1"]

[jobs]
timeout = "2m"
retries = 4
retry_backoff = "500ms"

[worker]
concurrency = 3

[[command]]
pattern = "deploy {service:name}"
help = "Deploy a service"
section = "Deploys"
examples = ["deploy web"]
native = "deploy"
allow = ["group:oncall", "user:console:bob"]
timeout = "30s"

[broker]
url = "amqp://ops:${MQ_PASSWORD}@mq:5672/%2f"
delivery_limit = 3
publish_timeout = "10s"

[store]
url = "redis://redis:6379/0"
retention = "2d"
"#,
    )
    .unwrap();
    assert!(!c.is_embedded());
    assert_eq!(c.acl.default, Some(DefaultPolicy::Deny));
    assert_eq!(c.jobs.timeout, Duration::from_secs(120));
    assert_eq!(c.worker.concurrency, 3);
    let cmd = &c.commands[0];
    assert_eq!(cmd.line, 18, "the line of the [[command]] header");
    assert_eq!(cmd.runs, Runs::Native("deploy".into()));
    assert_eq!(
        cmd.allow,
        Some(vec![
            AllowEntry::Group("oncall".into()),
            AllowEntry::User("console:bob".into())
        ])
    );
    assert_eq!(cmd.timeout, Some(Duration::from_secs(30)));
    assert_eq!(c.jobs.retries, 4);
    assert_eq!(c.jobs.retry_backoff, Duration::from_millis(500));
    let store = c.store.unwrap();
    assert_eq!(store.retention, Duration::from_secs(2 * 86_400));
    let broker = c.broker.unwrap();
    assert_eq!(broker.delivery_limit, 3);
    assert_eq!(broker.publish_timeout, Duration::from_secs(10));
    let url = broker.url;
    assert_eq!(url.expose(), "amqp://ops:hunter2@mq:5672/%2f");
    assert!(!format!("{url:?}").contains("hunter2"));
}

#[test]
fn syntax_errors_name_the_line() {
    let e = errors("[bot]\nname = \"x\"\n\n[worker\n");
    assert_eq!(e.len(), 1);
    assert!(e[0].starts_with("octobox.toml:4: "), "{e:?}");
}

#[test]
fn unknown_keys_are_named() {
    let e = errors("[bot]\nname = \"x\"\nnmae = \"y\"\n");
    assert!(e[0].starts_with("octobox.toml:3: "), "{e:?}");
    assert!(e[0].contains("nmae"), "{e:?}");
}

#[test]
fn wrong_types_say_what_was_expected() {
    let e = errors("[worker]\nconcurrency = \"four\"\n");
    assert_eq!(
        e,
        vec!["octobox.toml:2: worker.concurrency: invalid type: string, expected a whole number"]
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let e = errors(
        r#"
[jobs]
timeout = "soon"

[worker]
concurrency = 0

[[command]]
pattern = "deploy {service:name}"
help = ""
allow = ["group:nobody", "bob"]
timeout = "5 parsecs"
"#,
    );
    let all = e.join("\n");
    assert!(
        all.contains("octobox.toml:3: jobs.timeout: \"soon\" is not a duration"),
        "{all}"
    );
    assert!(
        all.contains("octobox.toml:6: worker.concurrency: 0 is not a whole number"),
        "{all}"
    );
    assert!(
        all.contains("command[1]: says nothing about what runs it"),
        "{all}"
    );
    assert!(all.contains("command[1].help: is empty"), "{all}");
    assert!(
        all.contains("group \"nobody\" is not declared in [acl.groups]"),
        "{all}"
    );
    assert!(all.contains("\"bob\" is neither"), "{all}");
    assert!(
        all.contains("command[1].timeout: \"5 parsecs\" is not a duration"),
        "{all}"
    );
    assert_eq!(e.len(), 7, "{all}");
}

#[test]
fn a_broker_without_a_store_is_refused() {
    let e = errors("[broker]\nurl = \"amqp://mq\"\n");
    assert_eq!(
        e,
        vec!["octobox.toml: store: [broker] is set but [store] is not: set both for durable jobs, or neither to run embedded"]
    );
}

#[test]
fn a_missing_environment_variable_is_named() {
    let e = errors("[broker]\nurl = \"amqp://u:${MQ_PASS}@mq\"\n[store]\nurl = \"redis://r\"\n");
    assert_eq!(
        e,
        vec!["octobox.toml:2: broker.url: environment variable MQ_PASS is not set (referenced as ${MQ_PASS})"]
    );
}

#[test]
fn a_url_of_the_wrong_kind_is_refused_without_showing_it() {
    let e = errors(
        "[broker]\nurl = \"amqp://mq\"\n[store]\nurl = \"http://admin:${MQ_PASSWORD}@redis\"\n",
    );
    assert!(
        e[0].contains("expected a URL starting with redis:// or rediss://"),
        "{e:?}"
    );
    assert!(!e[0].contains("hunter2"), "{e:?}");
}

#[test]
fn group_members_must_be_identities() {
    let e = errors("[acl.groups]\nops = [\"alice\"]\n");
    assert!(
        e[0].contains("acl.groups.ops: \"alice\" is not an identity"),
        "{e:?}"
    );
}

#[test]
fn a_missing_file_is_a_clear_error() {
    let e = Config::load(std::path::Path::new("/nonexistent/octobox.toml")).unwrap_err();
    assert!(e
        .to_string()
        .contains("/nonexistent/octobox.toml: cannot read the configuration file"));
}

#[test]
fn slack_in_socket_mode_reads_its_tokens_from_the_environment() {
    let env = |name: &str| match name {
        "BOT" => Some("xoxb-1".to_string()),
        "APP" => Some("xapp-1".to_string()),
        _ => None,
    };
    let c = Config::parse(
        "octobox.toml",
        "[slack]\nbot_token = \"${BOT}\"\napp_token = \"${APP}\"\nconnections = 3\n",
        env,
    )
    .unwrap();
    let slack = c.slack.unwrap();
    assert_eq!(slack.bot_token.expose(), "xoxb-1");
    assert_eq!(slack.api_url, SLACK_API_URL);
    assert_eq!(slack.prefixes, vec!["octobot".to_string(), "!".to_string()]);
    match slack.mode {
        SlackMode::Socket {
            app_token,
            connections,
        } => {
            assert_eq!(app_token.expose(), "xapp-1");
            assert_eq!(connections, 3);
        }
        other => panic!("expected Socket Mode, got {other:?}"),
    }
    assert!(!format!("{:?}", c.source).contains("xoxb"));
}

#[test]
fn slack_mistakes_are_named_by_line_and_key() {
    let all = errors(
        "[slack]\nbot_token = \"${NOPE}\"\nmode = \"events\"\nlisten = \"everywhere\"\napi_url = \"slack.com\"\n",
    )
    .join("\n");
    assert!(
        all.contains(":2: slack.bot_token: ") && all.contains("NOPE"),
        "{all}"
    );
    assert!(
        all.contains(":4: slack.listen: \"everywhere\" is not an address"),
        "{all}"
    );
    assert!(
        all.contains(": slack.signing_secret: the Events API needs"),
        "{all}"
    );
    assert!(
        all.contains(":5: slack.api_url: \"slack.com\" is not an http"),
        "{all}"
    );
    let all = errors("[slack]\nbot_token = \"x\"\nmode = \"carrier-pigeon\"\n").join("\n");
    assert!(
        all.contains(":3: slack.mode: \"carrier-pigeon\" is neither"),
        "{all}"
    );
    let all = errors("[slack]\nbot_token = \"x\"\n").join("\n");
    assert!(all.contains("slack.app_token: Socket Mode needs"), "{all}");
}

#[test]
fn a_durable_role_without_broker_and_store_says_how_to_run_instead() {
    let config = Config::parse("octobox.toml", "", |_| None).unwrap();
    assert_eq!(
        config.durable("octobox-worker").unwrap_err().to_string(),
        "octobox.toml: octobox-worker needs [broker] and [store] sections; to run everything \
         in one process, start octobox-bot without them instead"
    );
    let config = Config::parse(
        "octobox.toml",
        "[broker]\nurl = \"amqp://localhost\"\n[store]\nurl = \"redis://localhost\"\n",
        |_| None,
    )
    .unwrap();
    assert!(config.durable("octobox-worker").is_ok());
}

#[test]
fn store_tls_files_need_a_rediss_url_and_a_client_key_goes_with_its_certificate() {
    let text = "[broker]\nurl = \"amqp://localhost\"\n[store]\nurl = \"redis://localhost\"\nca_file = \"/etc/ca.pem\"\n";
    let e = Config::parse("octobox.toml", text, |_| None)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("octobox.toml:5: store.ca_file: is for TLS: write the store's URL as rediss://"),
        "{e}"
    );
    let text = "[broker]\nurl = \"amqp://localhost\"\n[store]\nurl = \"rediss://localhost\"\nca_file = \"/etc/ca.pem\"\nclient_cert_file = \"/etc/me.pem\"\n";
    let e = Config::parse("octobox.toml", text, |_| None)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("store.client_cert_file: and store.client_key_file go together"),
        "{e}"
    );
    let text = "[broker]\nurl = \"amqp://localhost\"\n[store]\nurl = \"rediss://localhost\"\nca_file = \"/etc/ca.pem\"\n";
    let config = Config::parse("octobox.toml", text, |_| None).unwrap();
    assert_eq!(
        config.store.unwrap().tls.ca_file.as_deref(),
        Some(std::path::Path::new("/etc/ca.pem"))
    );
}

const DURABLE: &str = "[store]\nurl = \"redis://r\"\n[broker]\nurl = \"amqp://mq\"\n";

#[test]
fn signing_keys_are_read_from_the_environment_and_never_shown() {
    let c = parse(&format!(
        "{DURABLE}signing_key = \"${{SIGNING_KEY}}\"\nprevious_signing_key = \"${{OLD_SIGNING_KEY}}\"\n"
    ))
    .unwrap();
    let broker = c.broker.unwrap();
    let key = broker.signing_key.clone().unwrap();
    assert_eq!(key.expose(), format!("{}-hunter3", "k".repeat(32)));
    assert_eq!(
        broker.previous_signing_key.as_ref().unwrap().expose(),
        "o".repeat(32)
    );
    let shown = format!("{broker:?}");
    assert!(
        !shown.contains("hunter3") && !shown.contains("oooo"),
        "{shown}"
    );
}

#[test]
fn without_a_signing_key_the_broker_is_still_accepted() {
    let broker = parse(DURABLE).unwrap().broker.unwrap();
    assert!(broker.signing_key.is_none());
    assert!(broker.previous_signing_key.is_none());
}

#[test]
fn a_short_signing_key_is_refused_with_its_length_only() {
    let e = errors(&format!("{DURABLE}signing_key = \"${{SHORT_KEY}}\"\n"));
    assert_eq!(
        e,
        vec![
            "octobox.toml:5: broker.signing_key: a signing key must be at least 32 bytes, \
              this one is 7; generate one with `openssl rand -hex 32` and pass it through the \
              environment"
        ]
    );
    assert!(!e[0].contains("hunter4"));
}

#[test]
fn a_signing_key_from_a_missing_variable_is_named() {
    let e = errors(&format!("{DURABLE}signing_key = \"${{NO_SUCH_KEY}}\"\n"));
    assert_eq!(
        e,
        vec![
            "octobox.toml:5: broker.signing_key: environment variable NO_SUCH_KEY is not set \
              (referenced as ${NO_SUCH_KEY})"
        ]
    );
}

#[test]
fn a_previous_signing_key_needs_a_current_one() {
    let e = errors(&format!(
        "{DURABLE}previous_signing_key = \"${{OLD_SIGNING_KEY}}\"\n"
    ));
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].starts_with(
            "octobox.toml:5: broker.previous_signing_key: is set but signing_key is not"
        ),
        "{e:?}"
    );
}

#[test]
fn broker_tls_files_need_an_amqps_url_and_are_kept_for_the_connection() {
    let text = "[broker]\nurl = \"amqp://localhost\"\nca_file = \"/etc/ca.pem\"\n[store]\nurl = \"redis://localhost\"\n";
    let e = Config::parse("octobox.toml", text, |_| None)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(
            "octobox.toml:3: broker.ca_file: is for TLS: write the broker's URL as amqps://"
        ),
        "{e}"
    );
    let text = "[broker]\nurl = \"amqps://localhost\"\nclient_key_file = \"/etc/me.key\"\n[store]\nurl = \"redis://localhost\"\n";
    let e = Config::parse("octobox.toml", text, |_| None)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("broker.client_cert_file: and broker.client_key_file go together"),
        "{e}"
    );
    let text = "[broker]\nurl = \"amqps://localhost\"\nca_file = \"/etc/ca.pem\"\nclient_cert_file = \"/etc/me.pem\"\nclient_key_file = \"/etc/me.key\"\n[store]\nurl = \"redis://localhost\"\n";
    let tls = Config::parse("octobox.toml", text, |_| None)
        .unwrap()
        .broker
        .unwrap()
        .tls;
    assert_eq!(
        tls.ca_file.as_deref(),
        Some(std::path::Path::new("/etc/ca.pem"))
    );
    assert_eq!(
        tls.client_key_file.as_deref(),
        Some(std::path::Path::new("/etc/me.key"))
    );
}

#[test]
fn a_command_without_allow_needs_a_stated_default_and_everyone_is_said_on_purpose() {
    let cmd =
        "[[command]]\npattern = \"deploy {svc:word}\"\nnative = \"deploy\"\nhelp = \"Deploy\"\n";
    let all = errors(cmd).join("\n");
    assert!(
        all.contains("command[1].allow: is missing, and [acl] states no default"),
        "{all}"
    );
    assert!(parse(&format!("[acl]\ndefault = \"deny\"\n{cmd}")).is_ok());
    let open = parse(&format!("{cmd}allow = [\"everyone\"]\n")).unwrap();
    assert_eq!(open.commands[0].allow, Some(vec![AllowEntry::Everyone]));
    // A built-in declared under another pattern declares its own access.
    let builtin = "[[command]]\npattern = \"stop {name:name}\"\nbuiltin = \"pause_schedule\"\nhelp = \"Pause\"\n";
    assert!(parse(builtin).is_ok());
}

#[test]
fn a_type_error_does_not_quote_the_value_which_may_be_a_secret() {
    for text in [
        "[jobs]\nretries = \"hunter2-secret\"\n",
        "[acl]\ndefault = \"hunter2-secret\"\n",
        "[bot]\nname = [\"hunter2-secret\"]\n",
    ] {
        let all = errors(text).join("\n");
        assert!(!all.contains("hunter2"), "{all}");
        assert!(all.contains("expected"), "{all}");
    }
    let all = errors("[jobs]\nretriez = 1\n").join("\n");
    assert!(
        all.contains("retriez"),
        "a misspelt key is still named: {all}"
    );
}

#[test]
fn the_longest_message_is_bounded_and_has_a_default() {
    assert_eq!(parse("").unwrap().bot.max_message_length, 4096);
    assert_eq!(
        parse("[bot]\nmax_message_length = 200\n")
            .unwrap()
            .bot
            .max_message_length,
        200
    );
    let all = errors("[bot]\nmax_message_length = 0\n").join("\n");
    assert!(
        all.contains("bot.max_message_length: must be from 1"),
        "{all}"
    );
}

#[test]
fn quotas_have_defaults_and_every_count_is_bounded() {
    assert_eq!(parse("").unwrap().quota, QuotaConfig::default());
    let all =
        errors("[quota]\nrunning_per_person = 0\nrequests_per_minute = 99999999999\n").join("\n");
    assert!(
        all.contains("quota.running_per_person: 0 is not a whole number from 1 to 10000"),
        "{all}"
    );
    assert!(
        all.contains("quota.requests_per_minute: 99999999999 is not a whole number"),
        "{all}"
    );
    let cmd =
        "[[command]]\npattern = \"x\"\nhelp = \"X\"\nnative = \"echo\"\nallow = [\"everyone\"]\n";
    let all = errors(&format!("{cmd}max_running = -1\nmax_per_minute = 0\n")).join("\n");
    assert!(
        all.contains("command[1].max_running: -1 is not a whole number from 1 to 100000"),
        "{all}"
    );
    assert!(all.contains("command[1].max_per_minute: 0 is not"), "{all}");
    let ok = parse(&format!("{cmd}max_running = 2\nmax_per_minute = 10\n")).unwrap();
    assert_eq!(ok.commands[0].max_running, Some(2));
    assert_eq!(ok.commands[0].max_per_minute, Some(10));
}

#[test]
fn approval_and_audit_keys_refuse_hostile_values_with_their_key() {
    let text = r#"
[acl.groups]
leads = ["ssh:carol"]

[audit]
keep = "1s"

[[command]]
pattern = "deploy {x:word}"
help = "Deploy"
native = "echo"
allow = ["everyone"]
approval = { by = "everyone", ttl = "30d", channel = "C1<!channel>" }

[[command]]
pattern = "status"
help = "Status"
builtin = "ping"
approval = { by = "group:nobody" }
"#;
    let all = errors(text).join("\n");
    assert!(
        all.contains("audit.keep: must be from 1h to 3650d"),
        "{all}"
    );
    assert!(all.contains("approval.by: cannot be \"everyone\""), "{all}");
    assert!(
        all.contains("approval.ttl: must be from 10s to 7d"),
        "{all}"
    );
    assert!(
        all.contains("approval.channel: must be a Slack channel id"),
        "{all}"
    );
    assert!(
        all.contains("approval: is for commands that run as jobs"),
        "{all}"
    );
    assert!(all.contains("group \"nobody\" is not declared"), "{all}");
    let ok = parse(
        "[acl.groups]\nleads = [\"ssh:carol\"]\n[[command]]\npattern = \"deploy\"\nhelp = \"D\"\nnative = \"echo\"\nallow = [\"everyone\"]\napproval = { by = \"group:leads\", reason = true }\n",
    )
    .unwrap();
    let approval = ok.commands[0].approval.as_ref().unwrap();
    assert_eq!(approval.ttl, ApprovalConfig::DEFAULT_TTL);
    assert!(approval.reason);
    assert_eq!(ok.audit, AuditConfig::default());
}

#[test]
fn http_listen_is_an_address_and_port_and_serves_nothing_when_absent() {
    assert_eq!(parse("").unwrap().http.listen, None);
    let ok = parse("[http]\nlisten = \"0.0.0.0:9100\"\n").unwrap();
    assert_eq!(ok.http.listen, Some("0.0.0.0:9100".parse().unwrap()));
    let all = errors("[http]\nlisten = \"metrics.internal\"\n").join("\n");
    assert!(
        all.contains("octobox.toml:2: http.listen: \"metrics.internal\" is not an address and port: write e.g. \"0.0.0.0:9100\""),
        "{all}"
    );
    let all = errors("[http]\nport = 9100\n").join("\n");
    assert!(all.contains("port"), "an unknown key is named: {all}");
}

#[test]
fn a_broker_is_one_url_or_a_clusters_urls_never_both() {
    let cluster = parse(
        "[broker]\nurls = [\"amqp://a:5672/%2f\", \"amqp://b:5672/%2f\", \"amqp://c:5672/%2f\"]\n[store]\nurl = \"redis://r:6379/0\"\n",
    )
    .unwrap();
    let broker = cluster.broker.unwrap();
    let urls: Vec<_> = broker.urls().map(|u| u.redacted_url()).collect();
    assert_eq!(urls, ["amqp://a:5672", "amqp://b:5672", "amqp://c:5672"]);

    let store = "[store]\nurl = \"redis://r:6379/0\"\n";
    let all = errors(&format!(
        "[broker]\nurl = \"amqp://a:5672/%2f\"\nurls = [\"amqp://b:5672/%2f\"]\n{store}"
    ))
    .join("\n");
    assert!(
        all.contains("octobox.toml:2: broker.url: and broker.urls are both set"),
        "{all}"
    );
    let all = errors(&format!("[broker]\nurls = []\n{store}")).join("\n");
    assert!(all.contains("broker.urls: lists 1 to 16 nodes"), "{all}");
    let all = errors(&format!(
        "[broker]\nurls = [\"amqp://a:5672/%2f\", \"amqps://b:5671/%2f\"]\n{store}"
    ))
    .join("\n");
    assert!(all.contains("mixes amqp:// and amqps://"), "{all}");
    let all = errors(&format!(
        "[broker]\nurls = [\"amqp://a:5672/%2f\", \"http://b/\"]\n{store}"
    ))
    .join("\n");
    assert!(all.contains("broker.urls[1]"), "{all}");
    let all = errors(&format!("[broker]\ndelivery_limit = 3\n{store}")).join("\n");
    assert!(all.contains("broker.url: is missing"), "{all}");
}

const SENTINELS: &str = "[broker]\nurl = \"amqp://mq\"\n[store]\nsentinels = [\"10.0.0.5:26379\", \"sentinel-2:26379\", \"[::1]:26380\"]\nmaster_name = \"octobox\"\n";

#[test]
fn a_store_through_sentinels_reads_its_addresses_and_passwords_and_waits_for_a_replica() {
    let c = parse(&format!(
        "{SENTINELS}password = \"${{REDIS_PASSWORD}}\"\nsentinel_password = \"${{SENTINEL_PASSWORD}}\"\ndb = 2\n"
    ))
    .unwrap();
    let store = c.store.unwrap();
    let StoreServer::Sentinels(sentinels) = &store.server else {
        panic!("sentinels, not a URL: {store:?}");
    };
    let shown: Vec<String> = sentinels.sentinels.iter().map(|s| s.to_string()).collect();
    assert_eq!(shown, ["10.0.0.5:26379", "sentinel-2:26379", "[::1]:26380"]);
    assert_eq!(sentinels.sentinels[2].host, "::1");
    assert_eq!(sentinels.master_name, "octobox");
    assert_eq!(sentinels.password.as_ref().unwrap().expose(), "hunter5");
    assert_eq!(
        sentinels.sentinel_password.as_ref().unwrap().expose(),
        "hunter6"
    );
    assert_eq!(sentinels.db, 2);
    assert_eq!(store.min_replicas, 1, "replicas exist: writes wait for one");
    assert_eq!(store.replica_timeout, Duration::from_secs(1));
    let debug = format!("{store:?}");
    assert!(
        !debug.contains("hunter5") && !debug.contains("hunter6"),
        "{debug}"
    );

    let off = parse(&format!("{SENTINELS}min_replicas = 0\n")).unwrap();
    assert_eq!(off.store.unwrap().min_replicas, 0);
}

#[test]
fn a_store_url_waits_for_no_replica_unless_told_to() {
    let store = parse(DURABLE).unwrap().store.unwrap();
    assert!(matches!(store.server, StoreServer::Url(ref u) if u.expose() == "redis://r"));
    assert_eq!(store.min_replicas, 0);
    let store = parse(
        "[broker]\nurl = \"amqp://mq\"\n[store]\nurl = \"redis://r\"\nmin_replicas = 2\nreplica_timeout = \"250ms\"\n",
    )
    .unwrap()
    .store
    .unwrap();
    assert_eq!(store.min_replicas, 2);
    assert_eq!(store.replica_timeout, Duration::from_millis(250));
}

#[test]
fn the_store_is_named_one_way_exactly() {
    let both = errors(&format!("{SENTINELS}url = \"redis://r\"\n"));
    assert_eq!(
        both,
        vec![
            "octobox.toml:4: store.sentinels: and store.url both name the store: keep url for \
             one Redis, or sentinels (with master_name) for Redis Sentinel"
        ]
    );
    let neither = errors("[broker]\nurl = \"amqp://mq\"\n[store]\nretention = \"2d\"\n");
    assert_eq!(neither.len(), 1, "{neither:?}");
    assert!(
        neither[0].starts_with("octobox.toml:3: store: names no Redis: set url = "),
        "{neither:?}"
    );
    let url_with_sentinel_keys = errors(
        "[broker]\nurl = \"amqp://mq\"\n[store]\nurl = \"redis://r\"\nmaster_name = \"octobox\"\npassword = \"${REDIS_PASSWORD}\"\n",
    );
    let all = url_with_sentinel_keys.join("\n");
    assert!(
        all.contains("octobox.toml:5: store.master_name: goes with sentinels; with url, write the password and the database in the URL"),
        "{all}"
    );
    assert!(
        all.contains("octobox.toml:6: store.password: goes with sentinels"),
        "{all}"
    );
    assert!(!all.contains("hunter5"), "{all}");
}

#[test]
fn sentinel_mistakes_are_named_by_line_and_key_without_showing_passwords() {
    let e = errors(
        "[broker]\nurl = \"amqp://mq\"\n[store]\nsentinels = [\n  \"10.0.0.5:26379\",\n  \"10.0.0.6\",\n  \"::1:26379\",\n]\npassword = \"${NO_SUCH_PASSWORD}\"\nsentinel_password = \"\"\ndb = 300\nmin_replicas = 11\nreplica_timeout = \"2m\"\nca_file = \"/etc/ca.pem\"\n",
    );
    let all = e.join("\n");
    for expected in [
        "octobox.toml:6: store.sentinels: \"10.0.0.6\" is not host:port: write e.g. \"10.0.0.5:26379\"",
        "octobox.toml:7: store.sentinels: \"::1:26379\" is not host:port",
        "octobox.toml:4: store.master_name: is needed with sentinels: the name they monitor the primary under",
        "octobox.toml:9: store.password: environment variable NO_SUCH_PASSWORD is not set",
        "octobox.toml:10: store.sentinel_password: is empty",
        "octobox.toml:11: store.db: 300 is not a whole number from 0 to 255",
        "octobox.toml:12: store.min_replicas: 11 is not a whole number from 0 to 10",
        "octobox.toml:13: store.replica_timeout: must be at most 1m",
        "octobox.toml:14: store.ca_file: is for TLS, which only url = \"rediss://...\" offers",
    ] {
        assert!(all.contains(expected), "missing {expected:?} in:\n{all}");
    }
    assert_eq!(e.len(), 9, "{all}");

    let e = errors("[broker]\nurl = \"amqp://mq\"\n[store]\nsentinels = []\nmaster_name = \"my primary\"\nreplica_timeout = \"0s\"\n");
    let all = e.join("\n");
    assert!(
        all.contains("octobox.toml:4: store.sentinels: lists no sentinel"),
        "{all}"
    );
    assert!(
        all.contains("octobox.toml:5: store.master_name: \"my primary\" is not a master name"),
        "{all}"
    );
    assert!(
        all.contains("octobox.toml:6: store.replica_timeout: must be longer than 0s"),
        "{all}"
    );
}

#[test]
fn api_tokens_join_their_groups_and_never_show() {
    let c = parse(
        r#"
[acl.groups]
oncall = ["slack:U1"]

[api]
requests_per_minute = 120

[[api.token]]
name = "grafana"
groups = ["oncall", "auditors"]
token = "${API_TOKEN}"
"#,
    )
    .unwrap();
    assert_eq!(c.api.requests_per_minute, 120);
    let t = &c.api.tokens[0];
    assert_eq!(t.identity(), "api:grafana");
    assert_eq!(t.value.expose(), "t".repeat(40));
    assert!(
        !format!("{c:?}").contains("tttttttt"),
        "a token never shows"
    );
    assert_eq!(c.acl.groups["oncall"], vec!["slack:U1", "api:grafana"]);
    assert_eq!(c.acl.groups["auditors"], vec!["api:grafana"]);
    assert!(
        parse("").unwrap().api.tokens.is_empty(),
        "no token, no caller"
    );
}

#[test]
fn api_token_mistakes_are_named_with_their_line() {
    let e = errors(
        r#"
[[api.token]]
name = "short"
token = "hunter2"

[[api.token]]
name = "unset"
token = "${NOT_SET}"

[[api.token]]
name = "bad name!"
groups = ["on call"]
token = "${API_TOKEN}"

[[api.token]]
name = "first"
token = "${API_TOKEN}"

[[api.token]]
name = "again"
token = "${API_TOKEN}"
"#,
    );
    let all = e.join("\n");
    assert!(
        all.contains("octobox.toml:2:") && all.contains("shorter than 24 characters"),
        "{all}"
    );
    assert!(all.contains("openssl rand -hex 32"), "{all}");
    assert!(
        all.contains("octobox.toml:6:") && all.contains("NOT_SET"),
        "{all}"
    );
    assert!(all.contains("\"bad name!\" is not a name"), "{all}");
    assert!(all.contains("\"on call\" is not a group name"), "{all}");
    assert!(
        all.contains("octobox.toml:19:") && all.contains("same value as another token"),
        "{all}"
    );
    assert!(
        !all.contains("hunter2") && !all.contains("tttt"),
        "values never show: {all}"
    );
}

#[test]
fn fan_out_is_read_with_its_default_and_refused_where_it_cannot_work() {
    let ok = parse(
        "[[command]]\npattern = \"uptime of group {g:name}\"\nhelp = \"U\"\nnative = \"echo\"\nallow = [\"everyone\"]\nfan_out = { group = \"g\" }\n",
    )
    .unwrap();
    assert_eq!(
        ok.commands[0].fan_out,
        Some(crate::FanOutConfig {
            group: "g".into(),
            host: "host".into()
        })
    );
    let text = r#"
[acl.groups]
leads = ["ssh:carol"]

[[command]]
pattern = "a {g:name}"
help = "A"
builtin = "ping"
fan_out = { group = "g" }

[[command]]
pattern = "b {g:name}"
help = "B"
native = "echo"
allow = ["everyone"]
approval = { by = "group:leads" }
fan_out = { group = "g" }

[[command]]
pattern = "c {g:name}"
help = "C"
native = "echo"
allow = ["everyone"]
fan_out = { group = "g", host = "g" }
"#;
    let all = errors(text).join("\n");
    assert!(
        all.contains("command[1].fan_out: is for commands that run jobs"),
        "{all}"
    );
    // A fan-out may wait for approval: the whole fan-out is approved at once.
    assert!(!all.contains("command[2]"), "{all}");
    assert!(
        all.contains("command[3].fan_out.host: is the group's slot"),
        "{all}"
    );
    let all = errors(
        "[[command]]\npattern = \"d {g:name}\"\nhelp = \"D\"\nnative = \"echo\"\nallow = [\"everyone\"]\nfan_out = { group = \"g\", hosts = \"h\" }\n",
    )
    .join("\n");
    assert!(all.contains("unknown field `hosts`"), "{all}");
}
