//! `Router`: what happens to one message, whatever adapter it came from.
//!
//! classify (lexicon) → access check (`AccessPolicy`) → a built-in answers at once, or a
//! job is recorded in the store and published to the broker. Adapters turn text into a
//! [`Request`] and show the [`Answer`]; they make none of these decisions. Each request
//! is handled under one catalog, loaded once from the `LiveCatalog` every reader shares.

use std::sync::Arc;

use commands::{Catalog, CommandAction, Executor, LiveCatalog};
use jobs::{Broker, Job, Origin, Store, Task};
use lexicon::{Classification, Match};

use crate::builtins::{self, BuiltinCall, BuiltinServices};
use crate::reply;
pub use crate::request::{Answer, Outcome, Request};

pub struct Router {
    catalog: LiveCatalog,
    services: BuiltinServices,
}

impl Router {
    pub fn new(catalog: LiveCatalog, services: BuiltinServices) -> Self {
        Router { catalog, services }
    }

    /// The catalog in force.
    pub fn catalog(&self) -> Arc<Catalog> {
        self.catalog.load()
    }

    /// What built-ins use: the store, the broker, the schedules, the reloader.
    pub fn services(&self) -> &BuiltinServices {
        &self.services
    }

    pub async fn handle(&self, request: &Request) -> Answer {
        let catalog = self.catalog.load();
        // First, before any work that grows with the text: a message past the limit is
        // refused unread. Counting stops one past the limit.
        let limit = catalog.max_message_length;
        if request.text.chars().nth(limit).is_some() {
            tracing::info!(
                user = %request.origin.identity(),
                bytes = request.text.len(),
                limit,
                "refused a message past the length limit"
            );
            return Answer::new(
                Outcome::BadArgument,
                reply::message_too_long(request.text.len(), limit),
            );
        }
        let table = &catalog.commands;
        let m = match table.catalog.classify(&request.text) {
            Classification::Matched(m) => m,
            Classification::Empty => return Answer::new(Outcome::Nothing, ""),
            c @ Classification::Unknown { .. } => {
                return Answer::new(Outcome::Unknown, reply::unknown_command(&c.to_string()));
            }
            c @ Classification::BadArgument(_) => {
                return Answer::new(Outcome::BadArgument, c.to_string())
            }
        };
        let Some(action) = table.action(&m.command) else {
            // The table is built from the same declarations as the catalog.
            return Answer::new(Outcome::Failed, reply::nothing_runs(&m.command));
        };
        let identity = request.origin.identity();
        if let Err(refusal) = catalog
            .access
            .check_action(&request.origin, &m.command, action)
        {
            tracing::info!(user = %identity, command = %m.command, "refused");
            return Answer::new(Outcome::Refused, refusal.to_string());
        }
        match &action.runs {
            Executor::Builtin(b) => {
                let call = BuiltinCall {
                    catalog: &catalog,
                    request,
                    args: &m.args,
                };
                builtins::run(*b, &self.services, call).await
            }
            Executor::Native(_) | Executor::Container(_) => {
                let task = match action.runs.task_checked(&m) {
                    Ok(Some(task)) => task,
                    Ok(None) => unreachable!("native and container actions always make a task"),
                    Err(refused) => return Answer::new(Outcome::BadArgument, refused.to_string()),
                };
                self.submit(m, task, action, &request.origin).await
            }
        }
    }

    /// Records the job (so its reply survives a bot restart) and publishes it, both at
    /// once: the job is queued when the broker confirms it. A record that did not land
    /// is written by the job's worker, which has the whole job.
    async fn submit(
        &self,
        m: Match,
        task: Task,
        action: &CommandAction,
        origin: &Origin,
    ) -> Answer {
        let job = Job::new(m.command, m.args, task, origin.clone(), action.timeout);
        let store: &dyn Store = self.services.store.as_ref();
        let broker: &dyn Broker = self.services.broker.as_ref();
        let (recorded, published) = tokio::join!(store.record_job(&job), broker.publish(&job));
        if let Err(e) = published {
            tracing::error!(job = %job.id, error = %e, "job not published");
            return Answer::new(Outcome::Failed, reply::not_queued(&e));
        }
        if let Err(e) = recorded {
            tracing::warn!(job = %job.id, error = %e, "job queued but not recorded; its worker will record it");
        }
        tracing::info!(job = %job.id, command = %job.command, user = %origin.identity(), "job queued");
        Answer {
            outcome: Outcome::Queued,
            text: reply::queued(job.id),
            job: Some(job.id),
        }
    }
}
