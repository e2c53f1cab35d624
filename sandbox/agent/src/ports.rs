//! `GET /v1/ports`: the TCP ports something listens on inside the instance, read from
//! /proc/net/tcp and /proc/net/tcp6 (state 0A), without the agent's own port.

use std::collections::BTreeSet;

use drydock_protocol::agent::ListeningPort;

const TCP_LISTEN: &str = "0A";

/// Listening ports found in the text of a /proc/net/tcp{,6} file.
pub fn parse_listening(text: &str) -> BTreeSet<u16> {
    let mut ports = BTreeSet::new();
    for line in text.lines().skip(1) {
        let mut fields = line.split_whitespace();
        let (Some(_sl), Some(local), Some(_remote), Some(state)) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        if state != TCP_LISTEN {
            continue;
        }
        if let Some(port) = local
            .rsplit_once(':')
            .and_then(|(_, p)| u16::from_str_radix(p, 16).ok())
        {
            ports.insert(port);
        }
    }
    ports
}

/// Unique sorted listening ports, minus `exclude` (the agent's own).
pub fn listening_ports(exclude: u16) -> Vec<ListeningPort> {
    let mut all = BTreeSet::new();
    for file in ["/proc/net/tcp", "/proc/net/tcp6"] {
        match std::fs::read_to_string(file) {
            Ok(text) => all.extend(parse_listening(&text)),
            Err(e) => tracing::debug!("reading {file} failed: {e}"),
        }
    }
    all.into_iter()
        .filter(|p| *p != exclude)
        .map(|port| ListeningPort { port })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:1068 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1234 1 0000000000000000 100 0 0 10 0
   1: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1235 1 0000000000000000 100 0 0 10 0
   2: 0100007F:1F90 0100007F:D2B4 01 00000000:00000000 00:00000000 00000000     0        0 1236 1 0000000000000000 20 4 30 10 -1
   3: 0100007F:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1237 1 0000000000000000 100 0 0 10 0
";
    const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2234 1 0000000000000000 100 0 0 10 0
   1: 00000000000000000000000001000000:0016 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2235 1 0000000000000000 100 0 0 10 0
";

    #[test]
    fn parses_listen_sockets_only() {
        let p: Vec<u16> = parse_listening(TCP).into_iter().collect();
        assert_eq!(p, vec![80, 4200, 8080]);
    }

    #[test]
    fn parses_tcp6() {
        let p: Vec<u16> = parse_listening(TCP6).into_iter().collect();
        assert_eq!(p, vec![22, 8080]);
    }

    #[test]
    fn tolerates_garbage() {
        assert!(parse_listening("").is_empty());
        assert!(parse_listening("header\nnot a line\n 0: zz:zz 0 0A\n").is_empty());
    }
}
