//! The scripted part of a run: the producer enqueues at its rate while the steps are played at
//! their due times, each through the fault module's one dispatch point.

use super::env::{producer_command, Dirs};
use super::stage::Stage;
use super::{RunError, RunOptions};
use crate::check::route_affected;
use crate::fault;
use crate::scenario::{timed_actions, Durability, Scenario, ServiceKind};
use crate::timeline::{EventKind, Recorder};
use crate::workload::{produce_amqp, produce_command, produce_redis, ProducerPlan};

/// Plays the schedule from now (the script's time zero) and waits for every producer.
pub(super) async fn play(
    scenario: &Scenario,
    options: &RunOptions,
    stage: &mut Stage,
    recorder: &Recorder,
) -> Result<(), RunError> {
    let clock = recorder.clock();
    let producer_command = producer_command(scenario, &stage.services, &Dirs::of(options))?;
    let t0 = recorder.record(EventKind::ScriptStarted);
    let workload_service = scenario.workload_service().to_owned();
    let workload_spec = &scenario.services[&workload_service];
    let direct_url = stage
        .services
        .get(&workload_service)
        .map(|s| s.client_url(&s.addr()))
        .unwrap_or_default();
    let plan = ProducerPlan {
        url: direct_url,
        queue: scenario.workload.queue.clone(),
        messages: scenario.workload.messages,
        first_seq: 0,
        rate: scenario.workload.rate,
        start_ns: t0 + scenario.workload.start.as_nanos(),
        durable: workload_spec.durability() != Durability::Transient,
        format: scenario.workload.payload.unwrap_or_default(),
    };
    let produce = |plan: ProducerPlan| match (&producer_command, workload_spec.kind) {
        (Some(cmd), _) => tokio::spawn(produce_command(cmd.clone(), plan, recorder.clone())),
        (None, ServiceKind::Redis) => tokio::spawn(produce_redis(plan, recorder.clone())),
        (None, ServiceKind::Rabbitmq) => tokio::spawn(produce_amqp(plan, recorder.clone())),
    };
    let mut producers = vec![produce(plan.clone())];
    let grace = scenario.limits.shutdown_grace.into();
    for timed in timed_actions(&scenario.steps) {
        let Some(step) = scenario.steps.get(timed.step) else {
            continue;
        };
        let scheduled_ns = t0 + timed.due.as_nanos();
        tokio::time::sleep_until(clock.instant_at(scheduled_ns).into()).await;
        let target = step.target.get_ref();
        let target_proxies: Vec<_> = stage
            .routes
            .iter()
            .filter(|r| route_affected(target, &r.worker, &r.service))
            .filter_map(|r| stage.proxies.get(&r.proxy))
            .collect();
        let service_name = step.link().map_or(target.as_str(), |(_, s)| s);
        if let Some(slot) = stage.workers.get(target) {
            let mut slot = slot.lock().await;
            let target = fault::Target::Worker(&mut slot);
            if timed.revert {
                fault::revert(timed.step, step, scheduled_ns, target, recorder).await;
            } else {
                fault::apply(timed.step, step, scheduled_ns, target, grace, recorder).await;
            }
            stage.pids.push(slot.worker.pid());
        } else if let Some(svc) = stage.services.get_mut(service_name) {
            let target = fault::Target::Service {
                service: svc.as_mut(),
                proxies: target_proxies,
            };
            if timed.revert {
                fault::revert(timed.step, step, scheduled_ns, target, recorder).await;
            } else {
                fault::apply(timed.step, step, scheduled_ns, target, grace, recorder).await;
            }
            stage.pids.extend(svc.pid());
        }
    }
    if scenario.workload.messages_after_steps > 0 {
        producers.push(produce(ProducerPlan {
            messages: scenario.workload.messages_after_steps,
            first_seq: plan.messages,
            start_ns: clock.now_ns(),
            ..plan
        }));
    }
    for producer in producers {
        if producer.await.is_err() {
            recorder.record(EventKind::Note {
                message: "the producer task failed".to_owned(),
            });
        }
    }
    Ok(())
}
