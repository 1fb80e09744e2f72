// Package redisadapter shares a Socket.IO namespace across servers through
// Redis pub/sub, wire-compatible with the npm @socket.io/redis-adapter 8.x
// (its classic, non-sharded adapter) and @socket.io/redis-emitter 5.x, so
// Parley nodes, Node.js Socket.IO servers and emitters can share a cluster.
//
// On the wire (key prefix K, default "socket.io"; namespace N, default "/"):
//   - K#N#       broadcasts to the whole namespace or to several rooms;
//     K#N#room#  broadcasts to exactly one room (a node with no socket in
//     that room ignores them). Each message is msgpack [uid, packet, opts]:
//     packet {type, data, nsp[, id]} with binary arguments as msgpack bin,
//     opts {rooms, except, flags}. Every node subscribes to the pattern K#N#*.
//   - K-request#N#   requests, JSON text, except BROADCAST (acknowledged
//     broadcast, msgpack): REMOTE_JOIN/LEAVE/DISCONNECT (fire and forget,
//     the sender applies its own at once and skips their echo), REMOTE_FETCH, ALL_ROOMS,
//     SOCKETS (answered), SERVER_SIDE_EMIT (answered when it has a requestId).
//   - K-response#N# and K-response#N#<uid>#  answers, JSON, except
//     BROADCAST_ACK (msgpack). How many answers to wait for is the number
//     of subscribers of the request channel (PUBSUB NUMSUB).
//
// The adapter wraps this node's in-memory adapter (Local), as the Node
// RedisAdapter extends the in-memory Adapter and calls super. Factory plugs
// it into engine/sio (sio.Options.Adapter): AddAll/Del/DelAll, SocketRooms
// and session recovery stay on the node's sio.LocalAdapter (room membership
// is per node, as in Node); Broadcast, FetchSockets, Sockets, AddSockets,
// DelSockets, DisconnectSockets and ServerSideEmit go through Redis.
// engine/sio has no acknowledged broadcasts and no acks on server-side
// emits yet: such a request from Node gets a client count of 0 (its
// broadcast still reaches this node's sockets), or no answer.
package redisadapter
