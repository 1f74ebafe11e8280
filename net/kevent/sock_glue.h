/* SPDX-License-Identifier: GPL-2.0 */
/*
 * kevent socket source: what its Rust side (socket.rs) cannot reach in
 * struct sock, whose fields and helpers are the inline functions and macros
 * of <net/sock.h> and the protocols' headers. Each function is a wrapper of
 * one helper or a read of one field; the logic is in socket.rs. Included by
 * rust/bindings/bindings_helper.h.
 */
#ifndef _NET_KEVENT_SOCK_GLUE_H
#define _NET_KEVENT_SOCK_GLUE_H

#include <linux/types.h>

struct kevent_storage;
struct sock;

/* kevent_sock_state(): the socket's state, as facts. */
#define KEVENT_SOCK_LISTEN		0x01	/* TCP_LISTEN */
#define KEVENT_SOCK_CONNECTED		0x02	/* TCP_ESTABLISHED, TCP_CLOSE_WAIT */
#define KEVENT_SOCK_RCV_SHUTDOWN	0x04	/* the peer sends nothing more */
#define KEVENT_SOCK_SEND_SHUTDOWN	0x08	/* nothing more may be sent */
#define KEVENT_SOCK_STREAM		0x10	/* SOCK_STREAM, SOCK_SEQPACKET */

/* kevent_sock_proto(): the protocol, when it has queues of its own. */
#define KEVENT_SOCK_OTHER		0
#define KEVENT_SOCK_TCP			1
#define KEVENT_SOCK_UDP			2	/* UDP and UDP-Lite */
#define KEVENT_SOCK_UNIX		3

void kevent_sock_hold(struct sock *sk);
void kevent_sock_put(struct sock *sk);
struct kevent_storage *kevent_sock_storage(struct sock *sk);
u32 kevent_sock_state(struct sock *sk);
bool kevent_sock_listening(struct sock *sk);
u32 kevent_sock_proto(struct sock *sk);
int kevent_sock_error(struct sock *sk);
bool kevent_sock_rx_queued(struct sock *sk);
bool kevent_sock_is_readable(struct sock *sk);
bool kevent_sock_tcp_rx_ready(struct sock *sk);
bool kevent_sock_udp_rx_queued(struct sock *sk);
bool kevent_sock_tcp_accept_queued(struct sock *sk);
bool kevent_sock_stream_writeable(struct sock *sk);
void kevent_sock_set_nospace(struct sock *sk);
bool kevent_sock_unix_writeable(struct sock *sk);
bool kevent_sock_writeable(struct sock *sk);

#endif /* _NET_KEVENT_SOCK_GLUE_H */
