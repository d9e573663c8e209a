//! `--keep`: the services of failed scenarios stay up until the user presses Ctrl+C.

use rebound::runner::Kept;

use super::interrupt::interrupted;

/// Prints where every kept service and proxy is, waits for Ctrl+C, then stops them all and
/// returns once they are gone.
pub async fn hold(kept: Vec<Kept>) {
    if kept.is_empty() {
        return;
    }
    // Listening before the prompt: Ctrl+C pressed the moment it shows is not missed.
    let stop = interrupted();
    for k in &kept {
        out_raw!("kept up for {} (failed):\n{}", k.scenario(), k.addresses());
    }
    out!(
        "the services of {} failed scenario(s) are still running; Ctrl+C stops and removes them",
        kept.len()
    );
    stop.await;
    for k in kept {
        k.release().await;
    }
    err!("kept services stopped");
}
