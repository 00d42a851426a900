//! The dashboard's HTML, rendered on the server (maud escapes every value it is given).
//! Pages carry what their script needs in `data-` attributes; the script itself is a
//! file of its own (`assets/dashboard.js`), so the pages need no inline script and the
//! content security policy can forbid it.

use maud::{html, Markup, DOCTYPE};

use crate::api::views::{ApprovalView, AuditView, JobPageView, JobView, ScheduleView, WorkerView};

/// The sections, in the navigation's order: path, title.
const SECTIONS: [(&str, &str); 6] = [
    ("/ui/jobs", "Jobs"),
    ("/ui/workers", "Workers"),
    ("/ui/schedules", "Schedules"),
    ("/ui/dead-letters", "Dead letters"),
    ("/ui/approvals", "Approvals"),
    ("/ui/audit", "Audit"),
];

/// A page with the navigation, for the logged-in `who`.
pub fn layout(title: &str, who: &str, csrf: &str, notice: Option<&str>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Octobox" }
                link rel="stylesheet" href="/ui/assets/dashboard.css";
                script src="/ui/assets/dashboard.js" defer {}
            }
            body {
                header {
                    strong.brand { "Octobox" }
                    nav {
                        @for (path, name) in SECTIONS {
                            a href=(path) class=[(name == title).then_some("current")] { (name) }
                        }
                    }
                    form.logout method="post" action="/ui/logout" {
                        input type="hidden" name="csrf" value=(csrf);
                        span.who { (who) }
                        button type="submit" { "Log out" }
                    }
                }
                main {
                    @if let Some(n) = notice {
                        p.notice #notice { (n) }
                    }
                    (body)
                }
            }
        }
    }
}

pub fn login(error: Option<&str>) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { "Log in · Octobox" }
                link rel="stylesheet" href="/ui/assets/dashboard.css";
            }
            body.login {
                main {
                    h1 { "Octobox" }
                    @if let Some(e) = error { p.notice.error { (e) } }
                    form method="post" action="/ui/login" {
                        label for="token" { "API token" }
                        input #token type="password" name="token" autocomplete="current-password" required;
                        button #login type="submit" { "Log in" }
                    }
                    p.hint { "A token declared under [[api.token]] in the bot's configuration." }
                }
            }
        }
    }
}

/// A message page (refused, not found, store down).
pub fn message(text: &str) -> Markup {
    html! { p.notice.error { (text) } }
}

fn status_cell(status: &str) -> Markup {
    html! { span class={"status " (status)} data-role="status" { (status.replace('_', " ")) } }
}

fn time(t: &chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// The filters a jobs page was asked with, to show in its form and give its script.
#[derive(Default)]
pub struct JobFilters {
    pub status: String,
    pub command: String,
    pub requester: String,
    pub adapter: String,
    pub text: String,
    /// Whether this is a later page (new jobs are added live to the first page only).
    pub paged: bool,
}

pub fn jobs(page: &JobPageView, f: &JobFilters) -> Markup {
    html! {
        h1 { "Jobs" }
        form.filters method="get" action="/ui/jobs" {
            input name="status" placeholder="status (failed,timed_out)" value=(f.status);
            input name="command" placeholder="command" value=(f.command);
            input name="requester" placeholder="requester (ssh:alice)" value=(f.requester);
            input name="adapter" placeholder="adapter" value=(f.adapter);
            input name="text" placeholder="text in arguments or result" value=(f.text);
            button type="submit" { "Filter" }
        }
        table #jobs data-live=(if f.paged { "no" } else { "yes" })
            data-status=(f.status) data-command=(f.command) data-requester=(f.requester)
            data-adapter=(f.adapter) data-text=(f.text) {
            thead { tr { th { "Job" } th { "Command" } th { "Status" } th { "Requester" } th { "Queued" } th { "Worker" } } }
            tbody {
                @for j in &page.jobs { (job_row(j)) }
            }
        }
        @if page.jobs.is_empty() { p #empty { "No jobs match." } }
        @if let Some(next) = &page.next {
            p { a #older href=(older_link(f, next)) { "Older jobs →" } }
        }
    }
}

fn older_link(f: &JobFilters, next: &str) -> String {
    let pairs = [
        ("status", f.status.as_str()),
        ("command", &f.command),
        ("requester", &f.requester),
        ("adapter", &f.adapter),
        ("text", &f.text),
        ("after", next),
    ];
    let query = serde_urlencoded::to_string(
        pairs
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .collect::<Vec<_>>(),
    )
    .unwrap_or_default();
    format!("/ui/jobs?{query}")
}

fn job_row(j: &JobView) -> Markup {
    html! {
        tr data-job=(j.id) {
            td { a href={"/ui/jobs/" (j.id)} { code { (j.id.get(..8).unwrap_or(&j.id)) } } }
            td data-role="command" { (j.command) }
            td { (status_cell(j.status)) }
            td data-role="requester" { (j.requester) }
            td { (time(&j.created_at)) }
            td data-role="worker" { (j.worker.as_deref().unwrap_or("")) }
        }
    }
}

/// Job `j`'s page; `waits` says who it waits for while it waits for approval.
pub fn job(j: &JobView, csrf: &str, final_status: bool, waits: Option<&str>) -> Markup {
    html! {
        h1 { "Job " code { (j.id) } }
        dl #job data-job=(j.id) data-final=(if final_status { "yes" } else { "no" }) {
            dt { "Command" } dd #command { (j.command) }
            dt { "Status" } dd { (status_cell(j.status)) }
            @if let Some(waits) = waits {
                dt { "Approval" } dd #approval { (waits) " — " a href="/ui/approvals" { "decide" } }
            }
            dt { "Asked by" } dd { (j.requester) @if let Some(c) = &j.channel { " in " (c) } }
            dt { "Queued" } dd { (time(&j.created_at)) }
            dt { "Started" } dd #started { (j.started_at.as_ref().map(time).unwrap_or_default()) }
            dt { "Finished" } dd #finished { (j.finished_at.as_ref().map(time).unwrap_or_default()) }
            dt { "Worker" } dd #worker { (j.worker.as_deref().unwrap_or("")) }
            dt { "Attempt" } dd { (j.attempt) }
            @if let Some(parent) = &j.parent {
                dt { "Part of" } dd #parent { a href={"/ui/jobs/" (parent)} { "fan-out " code { (parent) } } }
            }
            @if !j.children.is_empty() {
                dt { "Hosts' jobs" }
                dd #children { @for c in &j.children { a href={"/ui/jobs/" (c)} { code { (c) } } " " } }
            }
            dt { "Arguments" }
            dd #args {
                @match &j.args {
                    None => em { "hidden: only the requester and group auditors see them" },
                    Some(args) if args.is_empty() => em { "none" },
                    Some(args) => @for (k, v) in args { code { (k) "=" (v) } " " },
                }
            }
        }
        div.actions {
            @if !final_status {
                form method="post" action={"/ui/jobs/" (j.id) "/cancel"} {
                    input type="hidden" name="csrf" value=(csrf);
                    button #cancel type="submit" { "Cancel" }
                }
            }
            form method="post" action={"/ui/jobs/" (j.id) "/rerun"} {
                input type="hidden" name="csrf" value=(csrf);
                button #rerun type="submit" { "Re-run" }
            }
        }
        h2 { "Progress" }
        pre #progress {}
        h2 { "Result" }
        div #result {
            @if let Some(e) = &j.error { p.error #error { (e) } }
            @match &j.output {
                None if j.args.is_none() => em { "hidden" },
                None => em #pending { "not yet" },
                Some(o) => @match o.kind {
                    "text" => pre #output { (o.text.as_deref().unwrap_or("")) @if o.truncated { "\n…" } },
                    "file" => p #output { "a file: " (o.file_name.as_deref().unwrap_or("")) " (" (o.file_size.unwrap_or(0)) " bytes)" },
                    _ => em #output { "no output" },
                },
            }
        }
    }
}

pub fn workers(workers: &[WorkerView]) -> Markup {
    html! {
        h1 { "Workers" }
        @if workers.is_empty() { p { "No worker has a current heartbeat." } }
        @else {
            table #workers {
                thead { tr { th { "Name" } th { "Host" } th { "Runs" } th { "Busy" } th { "Since" } th { "Heartbeat" } } }
                tbody {
                    @for w in workers {
                        tr {
                            td { (w.name) } td { (w.host) } td { (w.classes.join(", ")) }
                            td { (w.running) " / " (w.concurrency) }
                            td { (time(&w.started_at)) } td { (time(&w.heartbeat_at)) }
                        }
                    }
                }
            }
        }
    }
}

pub fn schedules(schedules: &[ScheduleView], csrf: &str) -> Markup {
    html! {
        h1 { "Schedules" }
        @if schedules.is_empty() { p { "No schedules are configured." } }
        @else {
            table #schedules {
                thead { tr { th { "Name" } th { "When" } th { "Runs" } th { "Next" } th { "Last" } th { "" } } }
                tbody {
                    @for s in schedules {
                        tr data-schedule=(s.name) {
                            td { (s.name) @if s.paused { " " span.status.paused { "paused" } } }
                            td { (s.when) } td { (s.runs) }
                            td { (s.next.as_ref().map(time).unwrap_or_default()) }
                            td {
                                @if let Some(id) = &s.last_job {
                                    a href={"/ui/jobs/" (id)} { (s.last_status.unwrap_or("expired")) }
                                }
                            }
                            td.actions {
                                @let action = if s.paused { "resume" } else { "pause" };
                                @for a in [action, "run"] {
                                    form method="post" action={"/ui/schedules/" (s.name) "/" (a)} {
                                        input type="hidden" name="csrf" value=(csrf);
                                        button type="submit" { (if a == "run" { "Run now" } else { a }) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

pub fn dead_letters(page: &JobPageView) -> Markup {
    html! {
        h1 { "Dead letters" }
        p.hint { "Jobs the broker gave up on: each crashed every worker that took it, or was rejected." }
        @if page.jobs.is_empty() { p { "None." } }
        @else {
            table #dead {
                thead { tr { th { "Job" } th { "Command" } th { "Requester" } th { "Queued" } th { "Why" } } }
                tbody {
                    @for j in &page.jobs {
                        tr {
                            td { a href={"/ui/jobs/" (j.id)} { code { (j.id.get(..8).unwrap_or(&j.id)) } } }
                            td { (j.command) } td { (j.requester) } td { (time(&j.created_at)) }
                            td { (j.error.as_deref().unwrap_or("")) }
                        }
                    }
                }
            }
        }
    }
}

pub fn approvals(pending: &[ApprovalView], csrf: &str) -> Markup {
    html! {
        h1 { "Approvals" }
        @if pending.is_empty() { p { "Nothing waits for a decision." } }
        @else {
            table #approvals {
                thead { tr { th { "Job" } th { "Command" } th { "Asked by" } th { "Reason" } th { "Who may approve" } th { "Expires" } th { "" } } }
                tbody {
                    @for a in pending {
                        tr data-job=(a.job.id) {
                            td { a href={"/ui/jobs/" (a.job.id)} { code { (a.job.id.get(..8).unwrap_or(&a.job.id)) } } }
                            td { (a.job.command) } td { (a.job.requester) }
                            td { (a.reason.as_deref().unwrap_or("")) } td { (a.by) }
                            td { (time(&a.expires_at)) }
                            td.actions {
                                @for d in ["approve", "deny"] {
                                    form method="post" action={"/ui/approvals/" (a.job.id) "/" (d)} {
                                        input type="hidden" name="csrf" value=(csrf);
                                        @if d == "deny" { input name="reason" placeholder="reason"; }
                                        button type="submit" { (d) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

pub fn audit(entries: &[AuditView], next: Option<&str>) -> Markup {
    html! {
        h1 { "Audit" }
        p.hint { "The last day, oldest first." }
        table #audit {
            thead { tr { th { "When" } th { "Who" } th { "Text" } th { "Decision" } th { "Rule" } th { "Outcome" } } }
            tbody {
                @for e in entries {
                    tr {
                        td { (time(&e.at)) } td { (e.identity) } td { code { (e.text) } }
                        td { (e.decision) } td { (e.rule.as_deref().unwrap_or("")) }
                        td { (e.outcome) @if let Some(d) = &e.detail { ": " (d) } }
                    }
                }
            }
        }
        @if let Some(n) = next { p { a href={"/ui/audit?after=" (n)} { "Later entries →" } } }
    }
}

/// The stylesheet and script, served as files.
pub const CSS: &str = include_str!("assets/dashboard.css");
pub const JS: &str = include_str!("assets/dashboard.js");
