//! What a built-in command is given: [`BuiltinServices`], the few services built-ins
//! use, and [`BuiltinCall`], the one call it answers. Apart from `builtins`, so that the
//! families of built-ins (`approvals`, `audit_trail`, …) take them without importing the
//! module that dispatches to them.

use std::collections::BTreeMap;
use std::sync::Arc;

use commands::Catalog;
use jobs::{Broker, InventoryStore, JobId, ScheduleStore, Store};
use lexicon::Value;

use crate::reload::Reloader;
use crate::request::Request;

/// What built-ins may use.
pub struct BuiltinServices {
    /// Job records, results, workers.
    pub store: Arc<dyn Store>,
    /// Where `cancel` is broadcast.
    pub broker: Arc<dyn Broker>,
    /// Schedules' pauses, run requests and fires.
    pub schedules: Arc<dyn ScheduleStore>,
    /// What `reload` runs.
    pub reloader: Arc<Reloader>,
    /// Hosts and groups, for the inventory built-ins.
    pub inventory: Arc<dyn InventoryStore>,
}

/// One call of a built-in: the catalog it was classified against, who asked, and the
/// arguments.
pub struct BuiltinCall<'a> {
    pub catalog: &'a Catalog,
    pub request: &'a Request,
    pub args: &'a BTreeMap<String, Value>,
}

impl BuiltinCall<'_> {
    pub(crate) fn text(&self, slot: &str) -> Option<&str> {
        self.args.get(slot).and_then(Value::as_str)
    }

    pub(crate) fn job_id(&self) -> Option<JobId> {
        self.text("id").and_then(|s| s.parse().ok())
    }

    pub(crate) fn identity(&self) -> String {
        self.request.origin.identity()
    }
}
