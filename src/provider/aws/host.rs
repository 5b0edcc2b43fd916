//! Host steps (restart the app, start MySQL, promote, repoint) through SSM Run Command: sent to
//! the one instance, then its status polled until it succeeds, fails or runs out of time.

use std::time::Duration;

use super::AwsProvider;
use super::clients::{Clients, error_code, sdk_error};
use crate::provider::ProviderError;

/// How often a Run Command's status is asked for while it runs.
const SSM_POLL: Duration = Duration::from_secs(2);
/// A host command that has not finished by then is failed (SSM cancels it on the host too).
pub const SSM_COMMAND_TIMEOUT_SECS: i32 = 600;

/// A command that ran to success on a host.
pub(super) struct HostRun {
    /// The call's request id, so the timeline and the journal can name it.
    pub(super) command_id: String,
    /// The last of what it printed.
    pub(super) output: String,
}

/// Runs `command` on the host through SSM Run Command and waits for it to succeed.
pub(super) async fn run_command(
    p: &AwsProvider,
    c: &Clients,
    instance_id: &str,
    command: &str,
) -> Result<HostRun, ProviderError> {
    let sent = c
        .ssm
        .send_command()
        .document_name(&p.aws.ssm_document)
        .instance_ids(instance_id)
        .parameters("commands", vec![command.to_string()])
        .timeout_seconds(SSM_COMMAND_TIMEOUT_SECS)
        .comment(format!("dake fleet {}", p.fleet))
        .send()
        .await
        .map_err(sdk_error)?;
    let id = sent
        .command()
        .and_then(|cmd| cmd.command_id())
        .ok_or_else(|| ProviderError::Other("SendCommand answered without a command id".into()))?
        .to_string();
    let deadline =
        tokio::time::Instant::now() + Duration::from_secs(SSM_COMMAND_TIMEOUT_SECS as u64 + 60);
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
                return Err(ProviderError::Timeout(format!(
                    "command {id} on {instance_id} not finished after {SSM_COMMAND_TIMEOUT_SECS} s"
                )));
            }
            _ => tokio::time::sleep(SSM_POLL).await,
        }
    }
}
