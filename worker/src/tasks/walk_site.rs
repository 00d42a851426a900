//! `walk site <url> [depth]`: a same-origin crawl, as a person checking a site wants it:
//! how many pages answered what, the broken links (status 400 and over, or a failure
//! in words) with the page each is linked from, the slowest pages, and whether a bound
//! stopped the walk.
//!
//! From the first page the walk goes breadth first, one depth at a time (so a page is
//! always reached by its shortest path), up to `depth` links (2 unless asked, at most
//! `[tasks.walk_site] max_depth`), fetching `concurrency` URLs at once. Pages (`<a>`,
//! `<area>`) of the same origin (scheme, host, port) are followed; resources (`<link>`,
//! `<img>`, `<script>`) are fetched to check them, never read; links to other origins
//! are counted, never fetched. Each URL is fetched once, with `http check`'s client
//! ([`http_check::fetch`]): its timeouts, its TLS, its errors in words. A body is read to
//! 1 MiB ([`MAX_BODY`]; the report names pages cut there), and only an HTML one is read
//! for links ([`links`]). The walk is bounded in URLs (`max_pages`), and in time
//! (`deadline`, and never past the job's own timeout): the report says which bound
//! stopped it, and how much was left.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use config::WalkSiteSettings;
use futures::stream::{FuturesUnordered, StreamExt};
use jobs::Output;
use lexicon::Value;
use tokio::time::Instant;
use url::{Position, Url};

use super::certificate::{Presented, TlsClient};
use super::http_check::{self, plural, status_words, Body, MAX_BODY, MAX_URL};
use super::links::{self, Kind};
use super::net::{millis, Deadline};
use super::{clean, fit_chat};
use crate::registry::{NativeTask, TaskContext, TaskError};

/// How many links deep a walk goes when the command does not say.
pub const DEFAULT_DEPTH: u32 = 2;

/// The largest page read for links on the worker's own thread: a few tens of
/// microseconds, less than handing it to a blocking thread and back costs.
const READ_IN_PLACE: usize = 16 * 1024;

/// How many of the slowest URLs the report shows.
const SLOWEST_SHOWN: usize = 5;

/// How many other origins the report names.
const ORIGINS_SHOWN: usize = 5;

/// How many URLs abandoned at the deadline the report names.
const ABANDONED_SHOWN: usize = 5;

/// The most characters of one URL the report shows.
const URL_SHOWN: usize = 160;

pub struct WalkSite {
    settings: WalkSiteSettings,
    tls: TlsClient,
}

impl WalkSite {
    pub fn new(settings: WalkSiteSettings, tls: TlsClient) -> Self {
        WalkSite { settings, tls }
    }
}

#[async_trait]
impl NativeTask for WalkSite {
    fn params(&self) -> &'static [&'static str] {
        &["url", "depth"]
    }

    async fn run(&self, ctx: &TaskContext) -> Result<Output, TaskError> {
        let mut start = http_check::url(&ctx.text_arg("url")?).map_err(TaskError::Failed)?;
        start.set_fragment(None);
        let depth = self.depth(ctx.arg("depth"))?;
        // A tenth of the job's time is kept for the report: a walk cut by the worker's
        // timeout would say nothing at all.
        let budget = self.settings.deadline.min(ctx.job.timeout.mul_f64(0.9));
        let walked = self
            .walk(start, depth, budget, ctx)
            .await
            .map_err(TaskError::Failed)?;
        Ok(fit_chat(walked.report(), "walk-site.txt"))
    }
}

impl WalkSite {
    /// The depth asked for, or [`DEFAULT_DEPTH`]; never past `max_depth`.
    fn depth(&self, asked: Option<&Value>) -> Result<u32, TaskError> {
        let max = self.settings.max_depth;
        let Some(asked) = asked else {
            return Ok(DEFAULT_DEPTH.min(max));
        };
        let n = asked
            .as_int()
            .or_else(|| asked.to_string().parse().ok())
            .ok_or_else(|| TaskError::BadArgument("depth".into()))?;
        match u32::try_from(n) {
            Ok(n) if n <= max => Ok(n),
            _ => Err(TaskError::Failed(format!(
                "a walk goes from 0 to {max} links deep on this worker ([tasks.walk_site] max_depth), not {n}"
            ))),
        }
    }

    /// Walks the site of `start` to `depth` links, within `budget`, telling `ctx`'s
    /// requester of each depth as it starts: what was found, or why the first page could
    /// not be fetched at all.
    async fn walk(
        &self,
        start: Url,
        depth: u32,
        budget: Duration,
        ctx: &TaskContext,
    ) -> Result<Walked, String> {
        let started = Instant::now();
        let walk_deadline = started + budget;
        let mut walk = Walk {
            origin: start.origin(),
            depth,
            seen: HashSet::from([start.as_str().to_string()]),
            referrers: HashMap::new(),
            beyond: HashSet::new(),
            off_origin: HashSet::new(),
            off_origins: BTreeMap::new(),
        };
        let mut visits: Vec<Visit> = Vec::new();
        let mut stopped = Stopped::No;
        let mut level = vec![Target {
            url: start.clone(),
            kind: Kind::Page,
            depth: 0,
        }];
        let mut fetched: u32 = 0;
        while !level.is_empty() {
            if let Some(first) = level.first() {
                ctx.progress(format!(
                    "depth {}: {} URL{} to fetch, {fetched} fetched so far",
                    first.depth,
                    level.len(),
                    plural(level.len())
                ))
                .await;
            }
            let mut queue = VecDeque::from(level);
            let mut next = Next::default();
            let mut running = FuturesUnordered::new();
            let mut in_flight: Vec<Url> = Vec::new();
            loop {
                while running.len() < self.settings.concurrency as usize
                    && fetched < self.settings.max_pages
                {
                    let Some(target) = queue.pop_front() else {
                        break;
                    };
                    fetched += 1;
                    in_flight.push(target.url.clone());
                    running.push(self.visit(target));
                }
                let done = match tokio::time::timeout_at(walk_deadline, running.next()).await {
                    Ok(Some(done)) => done,
                    Ok(None) => break,
                    Err(_) => {
                        stopped = Stopped::Deadline {
                            budget,
                            abandoned: in_flight,
                            left: queue.len() + next.targets.len(),
                        };
                        break;
                    }
                };
                let (visit, found) = done;
                in_flight.retain(|u| *u != visit.target.url);
                walk.take(&visit.target, found, &mut next);
                visits.push(visit);
            }
            if !matches!(stopped, Stopped::No) {
                break;
            }
            let left = queue.len() + next.targets.len();
            if fetched >= self.settings.max_pages && left > 0 {
                stopped = Stopped::Pages {
                    max: self.settings.max_pages,
                    left,
                };
                break;
            }
            level = next.targets;
        }
        if let [only] = visits.as_slice() {
            if let Err(why) = &only.outcome {
                return Err(why.clone());
            }
        }
        if visits.is_empty() {
            return Err(format!(
                "{start}: no answer within {}, the walk's deadline",
                lexicon::format_duration(budget)
            ));
        }
        Ok(Walked {
            start,
            depth,
            max_depth: self.settings.max_depth,
            took: started.elapsed(),
            beyond: walk
                .beyond
                .iter()
                .filter(|u| !walk.seen.contains(*u))
                .count(),
            referrers: walk.referrers,
            off_origin: walk.off_origin.len(),
            off_origins: walk.off_origins,
            visits,
            stopped,
        })
    }

    /// Fetches one URL: how it answered, and (a page that is HTML) what it links to.
    async fn visit(&self, target: Target) -> (Visit, Vec<(Url, Kind)>) {
        let deadline = Deadline::after(self.settings.timeout);
        let body = match target.kind {
            Kind::Page => Body::KeepHtml,
            Kind::Resource => Body::Count,
        };
        let started = Instant::now();
        let fetched = http_check::fetch(&self.tls, &target.url, &deadline, body).await;
        let took = started.elapsed();
        let hop = match fetched {
            Ok(hop) => hop,
            Err(why) => {
                let visit = Visit {
                    target,
                    took,
                    outcome: Err(why),
                    presented: None,
                };
                return (visit, Vec::new());
            }
        };
        let mut found = Vec::new();
        if hop.status.is_redirection() {
            if let Some(to) = hop
                .location
                .as_deref()
                .and_then(|l| links::resolve(&target.url, l))
            {
                found.push((to, target.kind));
            }
        }
        let html = hop.html.filter(|_| hop.status.is_success());
        let parsed = html.is_some();
        if let Some(html) = html {
            if html.len() <= READ_IN_PLACE {
                found.extend(links::links(&html, &target.url));
            } else {
                // A larger page (a megabyte takes milliseconds) is read off the worker's
                // thread, which runs other jobs meanwhile.
                let url = target.url.clone();
                let read = tokio::task::spawn_blocking(move || links::links(&html, &url));
                if let Ok(links) = read.await {
                    found.extend(links);
                }
            }
        }
        let cut = hop.body.is_some_and(|(_, more)| more);
        let visit = Visit {
            target,
            took,
            outcome: Ok(Answer {
                status: hop.status,
                cut,
                parsed,
            }),
            presented: hop.presented,
        };
        (visit, found)
    }
}

/// A URL to fetch.
struct Target {
    url: Url,
    kind: Kind,
    /// Links from the first page.
    depth: u32,
}

/// The URLs of the next depth, each once.
#[derive(Default)]
struct Next {
    targets: Vec<Target>,
    at: HashMap<String, usize>,
}

/// What the walk has found so far, besides the fetches themselves.
struct Walk {
    origin: url::Origin,
    depth: u32,
    /// Every URL of the origin fetched or to be fetched.
    seen: HashSet<String>,
    /// For each URL linked to: the page the report names as linking to it (the
    /// shallowest, then the first in alphabetical order: the same whatever order the
    /// fetches ended in), and how many pages did.
    referrers: HashMap<String, Referrers>,
    /// Pages deeper than the walk goes, not followed.
    beyond: HashSet<String>,
    /// Links to other origins, each once, and how many went to each origin.
    off_origin: HashSet<String>,
    off_origins: BTreeMap<String, usize>,
}

impl Walk {
    /// Takes the links `found` on `from`: each same-origin URL not seen yet goes to the
    /// next depth (a page only if the walk goes that deep).
    fn take(&mut self, from: &Target, found: Vec<(Url, Kind)>, next: &mut Next) {
        for (url, kind) in found {
            if url.as_str().len() > MAX_URL {
                continue;
            }
            let named = self
                .referrers
                .entry(url.as_str().to_string())
                .or_insert_with(|| Referrers {
                    first: from.url.clone(),
                    depth: from.depth,
                    count: 0,
                });
            named.count += 1;
            if (from.depth, from.url.as_str()) < (named.depth, named.first.as_str()) {
                named.first = from.url.clone();
                named.depth = from.depth;
            }
            if url.origin() != self.origin {
                if self.off_origin.insert(url.as_str().to_string()) {
                    *self
                        .off_origins
                        .entry(url.origin().ascii_serialization())
                        .or_default() += 1;
                }
                continue;
            }
            if self.seen.contains(url.as_str()) {
                // Found as a resource first, linked to as a page on the same depth:
                // read it for links too.
                if let (Kind::Page, Some(&i)) = (kind, next.at.get(url.as_str())) {
                    next.targets[i].kind = Kind::Page;
                }
                continue;
            }
            let depth = from.depth + 1;
            if kind == Kind::Page && depth > self.depth {
                self.beyond.insert(url.as_str().to_string());
                continue;
            }
            self.seen.insert(url.as_str().to_string());
            next.at.insert(url.as_str().to_string(), next.targets.len());
            next.targets.push(Target { url, kind, depth });
        }
    }
}

/// The pages linking to one URL.
struct Referrers {
    /// The one the report names.
    first: Url,
    depth: u32,
    count: usize,
}

/// One URL fetched.
struct Visit {
    target: Target,
    /// From the connect to the end of the body.
    took: Duration,
    /// The answer, or why there was none.
    outcome: Result<Answer, String>,
    presented: Option<Presented>,
}

struct Answer {
    status: hyper::StatusCode,
    /// The body was longer than [`MAX_BODY`]: the rest was not read.
    cut: bool,
    /// It was read for links.
    parsed: bool,
}

/// Which bound stopped the walk, if one did.
enum Stopped {
    No,
    /// `max_pages` URLs were fetched; `left` more had been found.
    Pages {
        max: u32,
        left: usize,
    },
    /// The walk's time ran out with `abandoned` under way and `left` more found.
    Deadline {
        budget: Duration,
        abandoned: Vec<Url>,
        left: usize,
    },
}

/// A walk done: what [`Walked::report`] says.
struct Walked {
    start: Url,
    depth: u32,
    max_depth: u32,
    took: Duration,
    visits: Vec<Visit>,
    referrers: HashMap<String, Referrers>,
    /// Pages linked to deeper than `depth`, not followed.
    beyond: usize,
    off_origin: usize,
    off_origins: BTreeMap<String, usize>,
    stopped: Stopped,
}

impl Walked {
    /// The report a person reads: the headline, whether a bound stopped the walk, the
    /// statuses, other origins, the certificate, the broken links, the slowest URLs,
    /// the pages cut at [`MAX_BODY`].
    fn report(&self) -> String {
        let mut out = Vec::new();
        let pages = self
            .visits
            .iter()
            .filter(|v| v.target.kind == Kind::Page)
            .count();
        let resources = self.visits.len() - pages;
        out.push(format!(
            "walk of {}, {} link{} deep: {pages} page{} and {resources} resource{} fetched in {}",
            clean(self.start.as_str(), URL_SHOWN),
            self.depth,
            plural(self.depth as usize),
            plural(pages),
            plural(resources),
            millis(self.took)
        ));
        out.extend(self.bounds());

        let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
        let mut failed = 0;
        for visit in &self.visits {
            match &visit.outcome {
                Ok(a) => *statuses.entry(a.status.as_u16()).or_default() += 1,
                Err(_) => failed += 1,
            }
        }
        let mut counts: Vec<String> = statuses
            .iter()
            .map(|(status, n)| format!("{status}: {n}"))
            .collect();
        if failed > 0 {
            counts.push(format!("failed: {failed}"));
        }
        out.push(format!("statuses: {}", counts.join(" · ")));

        if self.off_origin > 0 {
            let mut origins: Vec<String> = self
                .off_origins
                .keys()
                .take(ORIGINS_SHOWN)
                .map(|o| clean(o, URL_SHOWN))
                .collect();
            if self.off_origins.len() > ORIGINS_SHOWN {
                origins.push(format!(
                    "and {} more",
                    self.off_origins.len() - ORIGINS_SHOWN
                ));
            }
            out.push(format!(
                "other origins: {} link{} to {} origin{}, counted, not fetched: {}",
                self.off_origin,
                plural(self.off_origin),
                self.off_origins.len(),
                plural(self.off_origins.len()),
                origins.join(", ")
            ));
        }

        if let Some(presented) = self.visits.iter().find_map(|v| v.presented.as_ref()) {
            let expiry = presented
                .leaf()
                .map(|c| format!("{}; ", c.expiry_words(Utc::now())))
                .unwrap_or_default();
            let trust = match &presented.verdict {
                Ok(()) => "trusted by this worker".to_string(),
                Err(why) => format!("NOT trusted by this worker: {why}"),
            };
            out.push(format!("certificate: {expiry}{trust}"));
        }

        let mut broken: Vec<&Visit> = self
            .visits
            .iter()
            .filter(|v| match &v.outcome {
                Ok(a) => a.status.as_u16() >= 400,
                Err(_) => true,
            })
            .collect();
        broken.sort_by(|a, b| {
            (a.target.depth, a.target.url.as_str()).cmp(&(b.target.depth, b.target.url.as_str()))
        });
        match broken.is_empty() {
            true => out.push("broken links: none".into()),
            false => out.push(format!("broken links ({}):", broken.len())),
        }
        for visit in broken {
            let what = match &visit.outcome {
                Ok(a) => status_words(a.status),
                Err(_) => "failed".to_string(),
            };
            let mut line = format!("  {what} {}", self.shown(&visit.target.url));
            match self.referrers.get(visit.target.url.as_str()) {
                Some(from) => {
                    line.push_str(&format!(" ← {}", self.shown(&from.first)));
                    let more = from.count - 1;
                    if more > 0 {
                        line.push_str(&format!(" (and {more} more page{})", plural(more)));
                    }
                }
                None => line.push_str(" (the first page)"),
            }
            if let Err(why) = &visit.outcome {
                // The URL is on the line already.
                let prefix = format!("{}: ", visit.target.url);
                let why = why.strip_prefix(&prefix).unwrap_or(why);
                line.push_str(&format!(": {}", clean(why, 300)));
            }
            out.push(line);
        }

        let mut slowest: Vec<&Visit> = self.visits.iter().collect();
        slowest.sort_by_key(|v| std::cmp::Reverse(v.took));
        out.push("slowest:".into());
        for visit in slowest.into_iter().take(SLOWEST_SHOWN) {
            let what = match &visit.outcome {
                Ok(a) => a.status.as_u16().to_string(),
                Err(_) => "failed".to_string(),
            };
            out.push(format!(
                "  {}  {what} {}",
                millis(visit.took),
                self.shown(&visit.target.url)
            ));
        }

        let cut: Vec<String> = self
            .visits
            .iter()
            .filter(|v| matches!(&v.outcome, Ok(a) if a.cut))
            .map(|v| {
                let read = match &v.outcome {
                    Ok(a) if a.parsed => " (links past it not read)",
                    _ => "",
                };
                format!("{}{read}", self.shown(&v.target.url))
            })
            .collect();
        if !cut.is_empty() {
            out.push(format!(
                "bodies cut at {} MiB: {}",
                MAX_BODY / (1024 * 1024),
                cut.join(", ")
            ));
        }
        out.join("\n")
    }

    /// Whether a bound stopped or shortened the walk, each said in a line; or that the
    /// walk is complete.
    fn bounds(&self) -> Vec<String> {
        let mut lines = Vec::new();
        match &self.stopped {
            Stopped::No => {}
            Stopped::Pages { max, left } => lines.push(format!(
                "STOPPED at the page bound: {max} URLs fetched, {left} more found and not fetched ([tasks.walk_site] max_pages)"
            )),
            Stopped::Deadline {
                budget,
                abandoned,
                left,
            } => {
                let mut shown: Vec<String> = abandoned
                    .iter()
                    .take(ABANDONED_SHOWN)
                    .map(|u| self.shown(u))
                    .collect();
                if abandoned.len() > ABANDONED_SHOWN {
                    shown.push(format!("and {} more", abandoned.len() - ABANDONED_SHOWN));
                }
                let under_way = match abandoned.is_empty() {
                    true => String::new(),
                    false => format!(
                        "{} fetch{} under way abandoned ({}), ",
                        abandoned.len(),
                        if abandoned.len() == 1 { "" } else { "es" },
                        shown.join(", ")
                    ),
                };
                lines.push(format!(
                    "STOPPED at the deadline of {}: {under_way}{left} more found and not fetched",
                    lexicon::format_duration(*budget)
                ));
            }
        }
        if self.beyond > 0 {
            let deeper = match self.depth < self.max_depth {
                true => format!("; ask for more, up to {}", self.max_depth),
                false => " (this worker's max_depth)".to_string(),
            };
            let deep = self.depth as usize + 1;
            lines.push(format!(
                "depth bound: {} page{} linked {deep} link{} deep not followed{deeper}",
                self.beyond,
                plural(self.beyond),
                plural(deep)
            ));
        }
        if lines.is_empty() {
            lines.push(format!(
                "complete: every page of this origin within {} link{} of the first was fetched",
                self.depth,
                plural(self.depth as usize)
            ));
        }
        lines
    }

    /// `url` as the report shows it: its path and query on the walk's origin, whole
    /// elsewhere.
    fn shown(&self, url: &Url) -> String {
        match url.origin() == self.start.origin() {
            true => clean(&url[Position::BeforePath..], URL_SHOWN),
            false => clean(url.as_str(), URL_SHOWN),
        }
    }
}
