//! `scanpay simulate`: the built-in gateway on its own, for training, for
//! another POS program's tests, or for a second till.

use std::net::SocketAddr;
use std::time::Duration;

use super::Exit;
use crate::simulator::{Fault, Simulator, SimulatorConfig, scenario_table};

/// The simulator, its WeChat endpoints starting with `fault` (`--fault`).
pub async fn run(listen: SocketAddr, slow_answer: Duration, fault: Fault) -> Exit {
    let config = SimulatorConfig {
        slow_answer,
        ..SimulatorConfig::demo()
    };
    let (appid, mch_id) = (config.appid.clone(), config.mch_id.clone());
    let simulator = match Simulator::start(listen, config).await {
        Ok(simulator) => simulator,
        Err(e) => {
            eprintln!(
                "scanpay simulate: cannot listen on {listen}: {e} (is the port taken? try --listen 127.0.0.1:0)"
            );
            return Exit::Config;
        }
    };
    simulator.set_fault(fault).await;
    // One write, errors ignored: a caller that reads only the first line
    // (the address) and closes the pipe must not stop the simulator. The
    // second line ends with the control port's URL, also for scripts.
    let control = simulator.control_url();
    let mut banner = format!(
        "WeChat Pay simulator listening on {}\n\
         control port, never faulted (even by refuse): {control}\n",
        simulator.base_url()
    );
    banner += &format!(
        "merchant: appid {appid}, mch_id {mch_id}, the documentation's example API key (MD5 or HMAC-SHA256)\n"
    );
    banner += "scenarios by amount (yuan):\n";
    for (fee, name, what) in scenario_table() {
        banner += &format!(
            "  {:>7}  {name:<24} {what}\n",
            crate::domain::Fen(*fee).to_string()
        );
    }
    banner += "any other amount: paid at once.\n";
    banner += &format!(
        "network fault: {} (none refuse drop delay http500 garbage badsign flap), switched with\n  \
         curl -d '{{\"mode\":\"drop\"}}' {control}/_simulator/fault\n",
        fault.name()
    );
    banner += "Ctrl-C stops.\n";
    let _ = std::io::Write::write_all(&mut std::io::stdout(), banner.as_bytes());
    let _ = tokio::signal::ctrl_c().await;
    simulator.shutdown().await;
    Exit::OK
}
