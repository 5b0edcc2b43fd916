//! Host steps (restart the app, start MySQL, promote, repoint) through SSM Run Command: sent to
//! the one instance, then its status polled until it succeeds, fails or runs out of time.

use std::time::Duration;

use super::AwsProvider;
use super::clients::{Clients, error_code, sdk_error};
use crate::provider::ProviderError;

/// How often a Run Command's status is asked for while it runs.
const SSM_POLL: Duration = Duration::from_secs(2);
/// How long SSM may take to deliver a command to its host (SendCommand's `TimeoutSeconds`,
/// which bounds delivery only: what bounds the run is the document's execution timeout).
const DELIVERY_TIMEOUT_SECS: i32 = 120;
/// How long dake waits for a command, beyond its execution timeout, before it cancels it.
pub const HOST_WAIT_MARGIN_SECS: u64 = 60;
/// How long dake asks after a cancellation what became of the command.
const AFTER_CANCEL: Duration = Duration::from_secs(10);
/// Documents known to take an `executionTimeout` parameter.
const TIMED_DOCUMENTS: &[&str] = &["AWS-RunShellScript", "AWS-RunPowerShellScript"];

/// A command that ran to success on a host.
pub(super) struct HostRun {
    /// The call's request id, so the timeline and the journal can name it.
    pub(super) command_id: String,
    /// The last of what it printed.
    pub(super) output: String,
}

/// What a command's status after a cancellation says of it: whether it ran.
pub fn after_cancel(status: Option<&str>) -> &'static str {
    match status {
        Some("Success") => "it had already run to success",
        Some("Failed") => "it had already run, and failed",
        Some("Cancelled") => "cancelled before it finished: what it did up to then stays done",
        Some("TimedOut") => "SSM stopped it at its execution timeout",
        _ => "SSM has not confirmed the cancellation: it may still run on the host; look there",
    }
}

/// Runs `command` on the host through SSM Run Command and waits for it to succeed, at most
/// its execution timeout and a margin; a command still running then is cancelled, and the
/// error says whether it ran.
pub(super) async fn run_command(
    p: &AwsProvider,
    c: &Clients,
    instance_id: &str,
    command: &str,
) -> Result<HostRun, ProviderError> {
    let limit = p.aws.host_command_timeout_secs;
    let mut send = c
        .ssm
        .send_command()
        .document_name(&p.aws.ssm_document)
        .instance_ids(instance_id)
        .parameters("commands", vec![command.to_string()])
        .timeout_seconds(DELIVERY_TIMEOUT_SECS)
        .comment(format!("dake fleet {}", p.fleet));
    if TIMED_DOCUMENTS.contains(&p.aws.ssm_document.as_str()) {
        send = send.parameters("executionTimeout", vec![limit.to_string()]);
    }
    let sent = send.send().await.map_err(sdk_error)?;
    let id = sent
        .command()
        .and_then(|cmd| cmd.command_id())
        .ok_or_else(|| ProviderError::Other("SendCommand answered without a command id".into()))?
        .to_string();
    // SSM has stopped it by then if it started at all: delivered within the delivery timeout,
    // run for at most its execution timeout (a short limit gets proportionally short margins).
    let delivery = (DELIVERY_TIMEOUT_SECS as u64).min(limit);
    let margin = HOST_WAIT_MARGIN_SECS.min(limit / 2);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(limit + delivery + margin);
    loop {
        let status = match c
            .ssm
            .get_command_invocation()
            .command_id(&id)
            .instance_id(instance_id)
            .send()
            .await
        {
            Ok(out) => out,
            // The invocation is registered a moment after the command is accepted.
            Err(e) if error_code(&e) == Some("InvocationDoesNotExist") => {
                tokio::time::sleep(SSM_POLL).await;
                continue;
            }
            Err(e) => return Err(sdk_error(e)),
        };
        use aws_sdk_ssm::types::CommandInvocationStatus as S;
        match status.status() {
            Some(S::Success) => {
                return Ok(HostRun {
                    output: crate::domain::call::output_tail(
                        status.standard_output_content().unwrap_or_default(),
                    ),
                    command_id: id,
                });
            }
            Some(S::Failed | S::Cancelled | S::TimedOut | S::Cancelling) => {
                return Err(ProviderError::Other(format!(
                    "command {id} on {instance_id}: {} {}",
                    status.status_details().unwrap_or("failed"),
                    status.standard_error_content().unwrap_or("").trim()
                )));
            }
            _ if tokio::time::Instant::now() > deadline => {
                let ran = cancel(c, &id, instance_id).await;
                return Err(ProviderError::Timeout(format!(
                    "command {id} on {instance_id} not finished after {limit} s: cancelled; {ran}"
                )));
            }
            _ => tokio::time::sleep(SSM_POLL).await,
        }
    }
}

/// Cancels the command and asks, for a few seconds, what became of it.
async fn cancel(c: &Clients, id: &str, instance_id: &str) -> &'static str {
    if let Err(e) = c
        .ssm
        .cancel_command()
        .command_id(id)
        .instance_ids(instance_id)
        .send()
        .await
    {
        tracing::warn!("cancelling command {id}: {}", sdk_error(e));
    }
    let until = tokio::time::Instant::now() + AFTER_CANCEL;
    let mut last = None;
    while tokio::time::Instant::now() < until {
        if let Ok(out) = c
            .ssm
            .get_command_invocation()
            .command_id(id)
            .instance_id(instance_id)
            .send()
            .await
        {
            last = out.status().map(|s| s.as_str().to_string());
            if !matches!(
                last.as_deref(),
                Some("InProgress" | "Pending" | "Delayed" | "Cancelling")
            ) {
                break;
            }
        }
        tokio::time::sleep(SSM_POLL).await;
    }
    after_cancel(last.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cancelled_command_says_whether_it_ran() {
        assert!(after_cancel(Some("Success")).contains("already run"));
        assert!(after_cancel(Some("Cancelled")).starts_with("cancelled before it finished"));
        assert!(after_cancel(Some("InProgress")).contains("may still run"));
        assert!(after_cancel(None).contains("may still run"));
    }
}
