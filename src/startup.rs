//! Turns checked settings into a running engine: the journal opened, the
//! built-in simulator started when no merchant is configured, the sandbox
//! key fetched when asked for.

use std::net::SocketAddr;

use crate::config::{Gateway, Settings};
use crate::journal::{Journal, JournalWriter, OrderRow};
use crate::payment::Engine;
use crate::simulator::{Simulator, SimulatorConfig};
use crate::wechat::api::Merchant;
use crate::wechat::client::GatewayClient;

pub struct Running {
    pub engine: Engine,
    pub settings: Settings,
    /// The in-process simulator, when the gateway is simulated.
    pub simulator: Option<Simulator>,
    /// Orders the journal shows unfinished (a crash, a power cut, or another
    /// scanpay paying right now): recovery takes those whose owner is gone,
    /// see `payment::recovery`.
    pub unfinished: Vec<OrderRow>,
}

impl Drop for Running {
    /// The command is over: close the journal before the process exits.
    fn drop(&mut self) {
        self.engine.journal.close();
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Config(String),
    #[error("{0}")]
    Journal(String),
    #[error("{0}")]
    Gateway(String),
}

impl StartError {
    /// The exit code a command ends with when scanpay cannot start.
    pub fn exit(&self) -> crate::cli::Exit {
        match self {
            StartError::Config(_) | StartError::Journal(_) => crate::cli::Exit::Config,
            StartError::Gateway(_) => crate::cli::Exit::Internal,
        }
    }
}

pub async fn start(mut settings: Settings) -> Result<Running, StartError> {
    let simulator = match settings.gateway {
        Gateway::Simulator { slow_answer } => {
            let config = SimulatorConfig {
                slow_answer,
                ..SimulatorConfig::demo()
            };
            let listen: SocketAddr = ([127, 0, 0, 1], 0).into();
            let simulator = Simulator::start(listen, config).await.map_err(|e| {
                StartError::Gateway(format!(
                    "could not start the built-in simulator on 127.0.0.1: {e}"
                ))
            })?;
            settings.client.base_url = simulator.base_url();
            tracing::info!(base_url = %settings.client.base_url, "built-in simulator started");
            Some(simulator)
        }
        Gateway::Wechat => None,
    };
    let (gateway, merchant) = gateway(&settings).await?;
    settings.merchant = merchant;
    let journal =
        Journal::open(&settings.journal_path).map_err(|e| StartError::Journal(e.to_string()))?;
    let unfinished = journal
        .unfinished()
        .map_err(|e| StartError::Journal(e.to_string()))?;
    if !unfinished.is_empty() {
        tracing::warn!(
            count = unfinished.len(),
            "unfinished orders in the journal: recovering those no live scanpay drives"
        );
    }
    let engine = Engine {
        gateway,
        merchant: settings.merchant.clone(),
        journal: JournalWriter::spawn(journal),
        timings: settings.timings,
        till: settings.till.clone(),
        spbill_create_ip: settings.spbill_create_ip.clone(),
        store_offset: settings.store_offset,
        language: settings.language,
    };
    Ok(Running {
        engine,
        settings,
        simulator,
        unfinished,
    })
}

/// The client for `settings.client` and the merchant to sign with: the
/// sandbox key in place of the API key when gateway.sandbox is on. Commands
/// that start no engine (`scanpay reconcile --store`) talk to WeChat through
/// this too.
pub async fn gateway(settings: &Settings) -> Result<(GatewayClient, Merchant), StartError> {
    let gateway =
        GatewayClient::new(&settings.client).map_err(|e| StartError::Config(e.to_string()))?;
    let mut merchant = settings.merchant.clone();
    if settings.client.sandbox {
        merchant.key = gateway.sandbox_sign_key(&merchant).await.map_err(|e| {
            StartError::Gateway(format!(
                "gateway.sandbox is on, but the sandbox signing key could not be fetched: {e}"
            ))
        })?;
    }
    Ok((gateway, merchant))
}
