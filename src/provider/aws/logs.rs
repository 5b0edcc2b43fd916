//! Run journals mirrored to CloudWatch Logs: a log group per fleet (created if missing), a
//! stream per run, one event per journal record, in order. Lines in, lines out: what a record
//! is, the runbook knows.

use std::time::{SystemTime, UNIX_EPOCH};

use aws_sdk_cloudwatchlogs::types::{InputLogEvent, OrderBy};

use super::AwsOptions;
use super::clients::{Clients, error_code, sdk_error};
use crate::config::AwsConfig;
use crate::provider::ProviderError;

/// PutLogEvents takes at most 10,000 events and 1,048,576 bytes (each event's message plus 26).
const MAX_EVENTS: usize = 10_000;
const MAX_BATCH_BYTES: usize = 1_000_000;
const EVENT_OVERHEAD: usize = 26;
/// The largest event CloudWatch Logs accepts, overhead included.
const MAX_EVENT_BYTES: usize = 256 * 1024 - EVENT_OVERHEAD;

pub struct LogsMirror {
    client: aws_sdk_cloudwatchlogs::Client,
    group: String,
}

impl LogsMirror {
    pub async fn connect(
        options: &AwsOptions,
        aws: &AwsConfig,
        group: String,
    ) -> Result<LogsMirror, ProviderError> {
        let clients = Clients::load(options, aws).await?;
        Ok(LogsMirror {
            client: clients.logs,
            group,
        })
    }

    pub fn group(&self) -> &str {
        &self.group
    }

    /// The group and the run's stream, created when missing.
    pub async fn ensure_stream(&self, stream: &str) -> Result<(), ProviderError> {
        let exists = |code: Option<&str>| code == Some("ResourceAlreadyExistsException");
        if let Err(e) = self
            .client
            .create_log_group()
            .log_group_name(&self.group)
            .send()
            .await
            && !exists(error_code(&e))
        {
            return Err(sdk_error(e));
        }
        match self
            .client
            .create_log_stream()
            .log_group_name(&self.group)
            .log_stream_name(stream)
            .send()
            .await
        {
            Err(e) if !exists(error_code(&e)) => Err(sdk_error(e)),
            _ => Ok(()),
        }
    }

    /// How many of `lines` (from the first) fit one PutLogEvents call.
    pub fn batch_len(lines: &[String]) -> usize {
        let mut bytes = 0;
        let mut n = 0;
        for l in lines.iter().take(MAX_EVENTS) {
            let size = l.len().min(MAX_EVENT_BYTES) + EVENT_OVERHEAD;
            if n > 0 && bytes + size > MAX_BATCH_BYTES {
                break;
            }
            bytes += size;
            n += 1;
        }
        n
    }

    /// Sends `lines` as events of `stream`, in order, stamped now: the record keeps its own
    /// time inside. A line over the event limit is cut, and says so.
    pub async fn put(&self, stream: &str, lines: &[String]) -> Result<(), ProviderError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let events: Vec<InputLogEvent> = lines
            .iter()
            .map(|l| {
                let message = if l.len() > MAX_EVENT_BYTES {
                    let mut cut = MAX_EVENT_BYTES - 32;
                    while !l.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    format!("{} …[cut by dake]", &l[..cut])
                } else {
                    l.clone()
                };
                InputLogEvent::builder()
                    .timestamp(now)
                    .message(message)
                    .build()
                    .map_err(|e| ProviderError::Other(e.to_string()))
            })
            .collect::<Result<_, _>>()?;
        self.client
            .put_log_events()
            .log_group_name(&self.group)
            .log_stream_name(stream)
            .set_log_events(Some(events))
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(())
    }

    /// The stream's events after `token` (from the start without one), and the token to read
    /// on from.
    pub async fn read(
        &self,
        stream: &str,
        token: Option<String>,
    ) -> Result<(Vec<String>, Option<String>), ProviderError> {
        let out = self
            .client
            .get_log_events()
            .log_group_name(&self.group)
            .log_stream_name(stream)
            .start_from_head(true)
            .set_next_token(token)
            .send()
            .await
            .map_err(sdk_error)?;
        let lines = out
            .events()
            .iter()
            .filter_map(|e| e.message().map(String::from))
            .collect();
        Ok((lines, out.next_forward_token().map(String::from)))
    }

    /// The stream written to last: the newest run; none before the fleet's first run made
    /// its group.
    pub async fn newest_stream(&self) -> Result<Option<String>, ProviderError> {
        let out = match self
            .client
            .describe_log_streams()
            .log_group_name(&self.group)
            .order_by(OrderBy::LastEventTime)
            .descending(true)
            .limit(1)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if error_code(&e) == Some("ResourceNotFoundException") => return Ok(None),
            Err(e) => return Err(sdk_error(e)),
        };
        Ok(out
            .log_streams()
            .first()
            .and_then(|s| s.log_stream_name().map(String::from)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_stay_under_the_calls_limits() {
        let small: Vec<String> = (0..12_000).map(|i| format!("line {i}")).collect();
        assert_eq!(LogsMirror::batch_len(&small), MAX_EVENTS);
        let big: Vec<String> = (0..10).map(|_| "x".repeat(200_000)).collect();
        assert_eq!(LogsMirror::batch_len(&big), 4);
        let huge = vec!["y".repeat(2_000_000)];
        assert_eq!(LogsMirror::batch_len(&huge), 1, "one cut event still goes");
        assert_eq!(LogsMirror::batch_len(&[]), 0);
    }
}
