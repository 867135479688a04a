//! `gpt-user:accounts/metrics` for the components: what only they see, into this application's
//! Prometheus metrics ([`crate::metrics::Metrics`]); a name outside the fixed set is ignored.

use crate::bindings::metrics;
use crate::runtime::HostState;

impl metrics::Host for HostState {
    async fn observe(&mut self, name: String, seconds: f64) {
        self.shared.metrics.component_observed(&name, seconds);
    }

    async fn count(&mut self, name: String) {
        self.shared.metrics.component_counted(&name);
    }
}
