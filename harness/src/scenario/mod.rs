//! Scenario files: the model, parsing with exact `file:line:col` errors, and validation.

mod backoff;
mod duration;
mod error;
mod load;
mod model;
mod schedule;
mod validate;

pub use backoff::{BackoffSpec, Jitter, Window, DEFAULT_ROUND_WINDOW};
pub use duration::{parse_duration, Dur, DurationError};
pub use error::{did_you_mean, line_col, Location, ScenarioError, ScenarioErrors};
pub use load::{load_file, parse_str};
pub use model::{
    Action, Duplicates, Durability, Expect, Limits, PatternsSpec, PayloadFormat,
    ProducerCommandSpec, ResultsKind, ResultsSpec, Scenario, ServiceKind, ServiceSpec, StepSpec,
    WorkerSpec, WorkloadSpec,
};
pub use schedule::{scripted_end, step_times};

impl Scenario {
    /// The service the workload enqueues to (validation guarantees there is one).
    pub fn workload_service(&self) -> &str {
        match &self.workload.service {
            Some(s) => s.get_ref(),
            None => self.services.keys().next().map_or("", String::as_str),
        }
    }
}
