//! What keeps a RabbitMQ node to itself on a network it shares with other nodes (the host's:
//! a local process, or a container in the host's network namespace): its own node name, and
//! its own AMQP, Erlang distribution and epmd ports, all on loopback. Both runtimes start their
//! nodes with this environment, so a node is private the same way on either.

/// A private node's name and ports (0 until chosen).
#[derive(Clone, Debug)]
pub(crate) struct PrivateNode {
    /// Unique per instance and kept across restarts: the node names its data directory after
    /// it, so a restarted node finds its own data again.
    pub(crate) name: String,
    pub(crate) amqp_port: u16,
    pub(crate) dist_port: u16,
    pub(crate) epmd_port: u16,
}

impl PrivateNode {
    /// A node for service `service`, its ports not chosen yet.
    pub(crate) fn new(service: &str) -> Self {
        Self {
            name: format!("rebound-{service}-{:08x}@localhost", rand::random::<u32>()),
            amqp_port: 0,
            dist_port: 0,
            epmd_port: 0,
        }
    }

    /// Sets the AMQP, distribution and epmd ports.
    pub(crate) fn set_ports(&mut self, [amqp, dist, epmd]: [u16; 3]) {
        (self.amqp_port, self.dist_port, self.epmd_port) = (amqp, dist, epmd);
    }

    /// Whether its ports are chosen (it started once, and a restart keeps them).
    pub(crate) fn has_ports(&self) -> bool {
        self.amqp_port != 0
    }

    /// Where it takes AMQP connections.
    pub(crate) fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.amqp_port)
    }

    /// The environment `rabbitmq-server` needs to run this node. `erl_args` are more arguments
    /// for the Erlang VM (a code path, the scenario's `args`), after these.
    ///
    /// The listener is also given as `-rabbit tcp_listeners`: command-line application settings
    /// win over a configuration file, and an image's file may name a listener of its own
    /// (`listeners.tcp.default = 5672`, on every interface), which would win over
    /// `RABBITMQ_NODE_PORT`. The distribution listens on loopback and is started with the VM
    /// (`-sname`): the broker then skips starting a second VM just to make sure an epmd runs,
    /// about half a second of every boot; with `ERL_EPMD_*` set, an epmd the VM starts itself
    /// is the node's own, on loopback.
    pub(crate) fn env(
        &self,
        erl_args: impl IntoIterator<Item = String>,
    ) -> Vec<(&'static str, String)> {
        let vm_args = [
            "-kernel inet_dist_use_interface {127,0,0,1}".to_owned(),
            format!("-sname {}", self.name),
            format!("-kernel inet_dist_listen_min {}", self.dist_port),
            format!("-kernel inet_dist_listen_max {}", self.dist_port),
            format!(
                "-rabbit tcp_listeners [{{\"127.0.0.1\",{}}}]",
                self.amqp_port
            ),
        ]
        .into_iter()
        .chain(erl_args)
        .collect::<Vec<_>>()
        .join(" ");
        vec![
            ("RABBITMQ_NODENAME", self.name.clone()),
            ("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1".to_owned()),
            ("RABBITMQ_NODE_PORT", self.amqp_port.to_string()),
            ("RABBITMQ_DIST_PORT", self.dist_port.to_string()),
            ("ERL_EPMD_PORT", self.epmd_port.to_string()),
            ("ERL_EPMD_ADDRESS", "127.0.0.1".to_owned()),
            ("RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS", vm_args),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::PrivateNode;

    #[test]
    fn every_listener_of_the_node_is_on_loopback_at_its_own_ports() {
        let mut node = PrivateNode::new("rabbitmq");
        assert!(!node.has_ports());
        node.set_ports([5001, 5002, 5003]);
        let env = node.env(["-pa /x".to_owned()]);
        let get = |k: &str| {
            env.iter()
                .find(|(key, _)| *key == k)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        assert_eq!(get("RABBITMQ_NODE_PORT"), "5001");
        assert_eq!(get("ERL_EPMD_PORT"), "5003");
        assert_eq!(get("ERL_EPMD_ADDRESS"), "127.0.0.1");
        let vm = get("RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS");
        assert!(vm.contains("tcp_listeners [{\"127.0.0.1\",5001}]"), "{vm}");
        assert!(vm.contains("inet_dist_listen_max 5002"), "{vm}");
        assert!(vm.ends_with("-pa /x"), "{vm}");
        assert_eq!(node.addr(), "127.0.0.1:5001");
    }
}
