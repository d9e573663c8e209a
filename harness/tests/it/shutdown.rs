//! Stopping a worker as systemd's `KillMode=mixed` does: SIGTERM to its main process only, so a
//! pre-fork worker's children finish the job in hand while it waits for them, and SIGKILL to
//! whatever is left of its process group once the grace is over.

use std::sync::Arc;
use std::time::Duration;

use rebound::process::{self, Child, LineSink};
use tokio::process::Command;
use tokio::sync::mpsc;

use crate::support::alive;

/// A pre-fork worker in miniature: the parent forks a child that runs one job (0.5 s); on
/// SIGTERM the parent waits for the child before it exits, as a warm shutdown does.
const PREFORK: &str = r#"
trap 'echo "parent: SIGTERM, waiting for the job"; wait "$job"; echo "parent: exits"; exit 0' TERM
sh -c 'echo "job: started"; sleep 0.5; echo "job: done"' &
job=$!
wait "$job"
"#;

/// Starts `script` under `sh`, its output lines sent to the returned receiver.
fn start(script: &str) -> (Child, mpsc::UnboundedReceiver<String>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let sink: LineSink = Arc::new(move |_, line| {
        let _ = tx.send(line);
    });
    let mut cmd = Command::new("sh");
    cmd.args(["-c", script]);
    (process::spawn(cmd, sink).expect("sh starts"), rx)
}

/// Waits for a line starting with `prefix`, or fails naming it.
async fn line(rx: &mut mpsc::UnboundedReceiver<String>, prefix: &str) -> String {
    let found = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(l) = rx.recv().await {
            if l.starts_with(prefix) {
                return Some(l);
            }
        }
        None
    })
    .await;
    match found {
        Ok(Some(l)) => l,
        Ok(None) => panic!("the output ended before a line starting with {prefix:?}"),
        Err(_) => panic!("no line starting with {prefix:?} within 10 s"),
    }
}

/// Every line left once the process is gone.
fn rest(mut rx: mpsc::UnboundedReceiver<String>) -> Vec<String> {
    let mut out = Vec::new();
    while let Ok(l) = rx.try_recv() {
        out.push(l);
    }
    out
}

#[tokio::test]
async fn sigterm_reaches_the_main_process_only_and_the_forked_child_finishes_its_job() {
    let (child, mut rx) = start(PREFORK);
    line(&mut rx, "job: started").await;
    let (status, killed) = child
        .terminate_mixed(Duration::from_secs(10))
        .await
        .expect("stopped");
    let rest = rest(rx);
    assert!(
        rest.iter().any(|l| l == "job: done"),
        "the job was cut: {rest:?}"
    );
    assert!(rest.iter().any(|l| l == "parent: exits"), "{rest:?}");
    assert!(!killed, "no SIGKILL was needed");
    assert_eq!(status.code, Some(0), "{status}");
}

/// The control: the same worker, SIGTERM to its whole group, loses the job in hand.
#[tokio::test]
async fn sigterm_to_the_whole_group_cuts_the_job_in_hand() {
    let (child, mut rx) = start(PREFORK);
    line(&mut rx, "job: started").await;
    child
        .terminate(Duration::from_secs(10))
        .await
        .expect("stopped");
    let rest = rest(rx);
    assert!(
        !rest.iter().any(|l| l == "job: done"),
        "the job survived SIGTERM to its group: {rest:?}"
    );
}

/// A main process that exits at SIGTERM and leaves a child still working: the child runs until
/// the grace is over, then the group is SIGKILLed and nothing is left.
#[tokio::test]
async fn a_child_still_working_when_the_grace_ends_is_killed_with_its_group() {
    let (child, mut rx) = start(
        r#"
trap 'exit 0' TERM
sh -c 'echo "job: $$"; exec sleep 60' &
wait
"#,
    );
    let job: u32 = line(&mut rx, "job: ")
        .await
        .trim_start_matches("job: ")
        .parse()
        .expect("the job's pid");
    let grace = Duration::from_millis(300);
    let started = std::time::Instant::now();
    let (status, _) = child.terminate_mixed(grace).await.expect("stopped");
    assert!(
        started.elapsed() >= grace,
        "the group was ended before the grace: {:?}",
        started.elapsed()
    );
    assert_eq!(status.code, Some(0), "the main process exited by itself");
    assert!(!alive(job), "the job (pid {job}) outlived the grace");
}
