//! Scenario files: the model, parsing with exact `file:line:col` errors, and validation.

mod backoff;
mod duration;
mod error;
mod load;
mod model;
pub mod patterns;
mod schedule;
pub mod template;
mod validate;

pub use crate::fault::{effect_of, Action};
pub use backoff::{BackoffSpec, Jitter, Window, DEFAULT_ROUND_WINDOW};
pub use duration::{parse_duration, Dur, DurationError};
pub use error::{did_you_mean, line_col, Location, ScenarioError, ScenarioErrors};
pub use load::{load_file, parse_str};
pub use model::{
    split_link, Count, Duplicates, Durability, Expect, ExploreSpec, HashPart, InProgressStore,
    InspectCommandSpec, Limits, PatternsSpec, PayloadFormat, ProducerCommandSpec, RestartPolicy,
    ResultsKind, ResultsSpec, Scenario, ServiceKind, ServiceSpec, StepSpec, StoreType, StreamSpec,
    Streams, WorkerSpec, WorkloadSpec,
};
pub use schedule::{occurrences, production_time, scripted_end, step_times, timed_actions, Timed};
pub use validate::worker_uses;

/// The JSON Schema of scenario files (draft 2020-12), from the model itself, so editors
/// (taplo / Even Better TOML, via a `#:schema ./scenario.schema.json` first line) complete
/// fields and check values. Shipped as `scenarios/scenario.schema.json`; `rebound schema`
/// prints it.
pub fn json_schema() -> String {
    let schema = schemars::schema_for!(Scenario);
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}

impl Scenario {
    /// The service the workload enqueues to (validation guarantees there is one).
    pub fn workload_service(&self) -> &str {
        match &self.workload.service {
            Some(s) => s.get_ref(),
            None => self.services.keys().next().map_or("", String::as_str),
        }
    }
}
