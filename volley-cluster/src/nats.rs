//! The NATS broker, through `async-nats`. The client reconnects by itself
//! (forever, backing off) and subscribes again to every live subscription;
//! volley-cluster only watches its events: connection changes and slow
//! consumers, which are counted and logged.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::client::RequestErrorKind;
use async_nats::connection::State;
use async_nats::{Client, ConnectOptions, Event};
use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::StreamExt;

use crate::broker::{Broker, BrokerError, Inbound, Subscription};
use crate::config::ClusterConfig;

/// What the broker client reported, counted.
#[derive(Debug, Default)]
pub(crate) struct BrokerEvents {
    pub(crate) slow_consumer: AtomicU64,
    pub(crate) disconnects: AtomicU64,
}

/// A NATS connection as a [`Broker`].
#[derive(Debug, Clone)]
pub struct NatsBroker {
    client: Client,
    pub(crate) events: Arc<BrokerEvents>,
}

impl NatsBroker {
    /// Connects to the NATS server of `config`. Waits for the first
    /// connection (failing if the server cannot be reached); after that the
    /// client reconnects by itself whenever the connection drops.
    pub async fn connect(config: &ClusterConfig, name: &str) -> Result<Self, BrokerError> {
        let events = Arc::new(BrokerEvents::default());
        let counted = events.clone();
        let options = ConnectOptions::new()
            .name(name)
            .subscription_capacity(config.subscription_capacity)
            .max_reconnects(None)
            // Back off from 50 ms to 1 s: a restarted broker is found quickly.
            .reconnect_delay_callback(|attempt| Duration::from_millis((50u64 << attempt.min(5)).min(1_000)))
            .event_callback(move |event| {
                let counted = counted.clone();
                async move {
                    match event {
                        Event::SlowConsumer(sid) => {
                            counted.slow_consumer.fetch_add(1, Ordering::Relaxed);
                            tracing::warn!(
                                subscription = sid,
                                "broker client dropped messages: this node is a slow consumer"
                            );
                        }
                        Event::Closed | Event::Draining => tracing::debug!(%event, "broker connection closing"),
                        Event::Disconnected => {
                            counted.disconnects.fetch_add(1, Ordering::Relaxed);
                            tracing::warn!("lost the broker; reconnecting");
                        }
                        Event::Connected => tracing::info!("connected to the broker"),
                        other => tracing::info!(event = %other, "broker event"),
                    }
                }
            });
        let client = options
            .connect(config.url.as_str())
            .await
            .map_err(|e| BrokerError::Other(format!("cannot reach the NATS server at {}: {e}", config.url)))?;
        Ok(Self { client, events })
    }
}

impl NatsBroker {
    /// Refuses a message the server would not take (it would close the
    /// connection over it).
    fn fits(&self, payload: &Bytes) -> Result<(), BrokerError> {
        let max = self.client.max_payload();
        if payload.len() > max {
            return Err(BrokerError::TooLarge {
                len: payload.len(),
                max,
            });
        }
        Ok(())
    }
}

impl Broker for NatsBroker {
    fn publish(
        &self,
        subject: String,
        reply: Option<String>,
        payload: Bytes,
    ) -> BoxFuture<'_, Result<(), BrokerError>> {
        Box::pin(async move {
            if !self.is_connected() {
                return Err(BrokerError::Unavailable);
            }
            self.fits(&payload)?;
            let sent = match reply {
                Some(reply) => self.client.publish_with_reply(subject, reply, payload).await,
                None => self.client.publish(subject, payload).await,
            };
            sent.map_err(|e| BrokerError::Other(e.to_string()))
        })
    }

    fn request(&self, subject: String, payload: Bytes, timeout: Duration) -> BoxFuture<'_, Result<Bytes, BrokerError>> {
        Box::pin(async move {
            if !self.is_connected() {
                return Err(BrokerError::Unavailable);
            }
            self.fits(&payload)?;
            let request = async_nats::Request::new().payload(payload).timeout(Some(timeout));
            match self.client.send_request(subject, request).await {
                Ok(message) => Ok(message.payload),
                Err(e) => Err(match e.kind() {
                    RequestErrorKind::NoResponders => BrokerError::NoResponders,
                    RequestErrorKind::TimedOut => BrokerError::TimedOut,
                    _ => BrokerError::Other(e.to_string()),
                }),
            }
        })
    }

    fn subscribe(&self, subject: String) -> BoxFuture<'_, Result<Subscription, BrokerError>> {
        Box::pin(async move {
            let subscriber = self
                .client
                .subscribe(subject)
                .await
                .map_err(|e| BrokerError::Other(e.to_string()))?;
            let messages = subscriber.map(|message| Inbound {
                subject: message.subject.to_string(),
                reply: message.reply.map(|r| r.to_string()),
                payload: message.payload,
                no_responders: message.status == Some(async_nats::StatusCode::NO_RESPONDERS),
            });
            Ok(Box::pin(messages) as Subscription)
        })
    }

    fn new_inbox(&self) -> String {
        self.client.new_inbox()
    }

    fn is_connected(&self) -> bool {
        self.client.connection_state() == State::Connected
    }

    fn flush(&self) -> BoxFuture<'_, Result<(), BrokerError>> {
        Box::pin(async move {
            // async-nats's own flush only empties the socket's buffer. A
            // request nobody subscribes to is answered by the server itself
            // ("no responders") once it has read it, and so everything this
            // connection sent before it: a round trip through the server.
            let probe = format!("{}.flush", self.client.new_inbox());
            match self.client.request(probe, Bytes::new()).await {
                Ok(_) => Ok(()),
                Err(e) if e.kind() == RequestErrorKind::NoResponders => Ok(()),
                Err(e) => Err(BrokerError::Other(e.to_string())),
            }
        })
    }

    fn max_payload(&self) -> usize {
        self.client.max_payload()
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            // Draining unsubscribes, flushes and closes; nothing reconnects.
            if let Err(e) = self.client.drain().await {
                tracing::debug!(error = %e, "broker connection not drained");
            }
        })
    }
}
