// SPDX-License-Identifier: GPL-2.0
/*
 * kevent socket source: the C glue of socket.rs (see sock_glue.h).
 */
#include <linux/kevent_storage.h>
#include <linux/net.h>
#include <linux/rcupdate.h>
#include <linux/udp.h>
#include <net/inet_connection_sock.h>
#include <net/sock.h>
#include <net/tcp.h>
#include <net/tcp_states.h>

#include "sock_glue.h"

/* socket.rs knows sk_data_ready()'s mask, to narrow it where it is notified. */
static_assert(SK_KEVENT_DATA_READY == (KEVENT_SOCKET_RECV | KEVENT_SOCKET_ACCEPT));

void kevent_sock_hold(struct sock *sk)
{
	sock_hold(sk);
}

void kevent_sock_put(struct sock *sk)
{
	sock_put(sk);
}

struct kevent_storage *kevent_sock_storage(struct sock *sk)
{
	return &sk->sk_kevent;
}

/* One read of sk_state and of sk_shutdown. */
u32 kevent_sock_state(struct sock *sk)
{
	int state = READ_ONCE(sk->sk_state);
	u8 shutdown = READ_ONCE(sk->sk_shutdown);

	return (state == TCP_LISTEN ? KEVENT_SOCK_LISTEN : 0) |
	       ((1 << state) & (TCPF_ESTABLISHED | TCPF_CLOSE_WAIT) ?
		KEVENT_SOCK_CONNECTED : 0) |
	       (shutdown & RCV_SHUTDOWN ? KEVENT_SOCK_RCV_SHUTDOWN : 0) |
	       (shutdown & SEND_SHUTDOWN ? KEVENT_SOCK_SEND_SHUTDOWN : 0) |
	       (sk->sk_type == SOCK_STREAM || sk->sk_type == SOCK_SEQPACKET ?
		KEVENT_SOCK_STREAM : 0);
}

bool kevent_sock_listening(struct sock *sk)
{
	return READ_ONCE(sk->sk_state) == TCP_LISTEN;
}

u32 kevent_sock_proto(struct sock *sk)
{
	if (IS_ENABLED(CONFIG_INET) && sk_is_tcp(sk))
		return KEVENT_SOCK_TCP;
	if (IS_ENABLED(CONFIG_INET) && sk_is_inet(sk) &&
	    sk->sk_type == SOCK_DGRAM &&
	    (sk->sk_protocol == IPPROTO_UDP ||
	     sk->sk_protocol == IPPROTO_UDPLITE))
		return KEVENT_SOCK_UDP;
	return sk_is_unix(sk) ? KEVENT_SOCK_UNIX : KEVENT_SOCK_OTHER;
}

int kevent_sock_error(struct sock *sk)
{
	return READ_ONCE(sk->sk_err);
}

bool kevent_sock_rx_queued(struct sock *sk)
{
	return !skb_queue_empty_lockless(&sk->sk_receive_queue);
}

bool kevent_sock_is_readable(struct sock *sk)
{
	return sk_is_readable(sk);
}

/*
 * The TCP and UDP helpers are called only for what kevent_sock_proto()
 * says is TCP or UDP, never without CONFIG_INET; IS_ENABLED() keeps the
 * symbols they use (tcp_memory_pressure...) out of such kernels.
 */
bool kevent_sock_tcp_rx_ready(struct sock *sk)
{
	return IS_ENABLED(CONFIG_INET) &&
	       tcp_epollin_ready(sk, sock_rcvlowat(sk, 0, INT_MAX));
}

bool kevent_sock_udp_rx_queued(struct sock *sk)
{
	return IS_ENABLED(CONFIG_INET) &&
	       !skb_queue_empty_lockless(&udp_sk(sk)->reader_queue);
}

bool kevent_sock_tcp_accept_queued(struct sock *sk)
{
	return IS_ENABLED(CONFIG_INET) &&
	       !reqsk_queue_empty(&inet_csk(sk)->icsk_accept_queue);
}

bool kevent_sock_stream_writeable(struct sock *sk)
{
	return __sk_stream_is_writeable(sk, 1);
}

/*
 * As tcp_poll(): TCP calls ->sk_write_space() only for a socket marked
 * SOCK_NOSPACE. The struct socket is freed after an RCU grace period.
 */
void kevent_sock_set_nospace(struct sock *sk)
{
	struct socket *sock;

	rcu_read_lock();
	sock = READ_ONCE(sk->sk_socket);
	if (sock)
		set_bit(SOCK_NOSPACE, &sock->flags);
	rcu_read_unlock();
	/* Pairs with the smp_mb() in tcp_check_space(), as in tcp_poll(). */
	smp_mb__after_atomic();
}

/* As unix_writable(): unix_write_space() wakes on this condition. */
bool kevent_sock_unix_writeable(struct sock *sk)
{
	return (refcount_read(&sk->sk_wmem_alloc) << 2) <=
	       READ_ONCE(sk->sk_sndbuf);
}

bool kevent_sock_writeable(struct sock *sk)
{
	return sock_writeable(sk);
}
