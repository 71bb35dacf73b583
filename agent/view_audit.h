/* The answer to PROTO_OP_AUDIT (docs/protocol.md, "audit"): a page of the
 * replicated audit trail (fsm_audit.h) as this agent's replica holds it.
 * Pure: reads the state machine only.
 */
#ifndef VC_AGENT_VIEW_AUDIT_H
#define VC_AGENT_VIEW_AUDIT_H

#include <msgpack.h>

#include "../proto/frame.h"
#include "fsm.h"

/* Packs {entries: [entry], next: seq, more: bool, oldest: seq, held: n}:
 * the entries of f's trail matching q, oldest first, at most q->limit;
 * next is the seq of the last one (ask again with after_seq = next while
 * more), oldest the seq of the oldest entry still held (0 if none).
 * Each entry: {seq, time_ms, type, name, sites, origin, request_id, code,
 * error, message}. Returns 0 or VC_ENOMEM (an empty page is packed). */
int view_audit(msgpack_packer *pk, const struct fsm *f,
               const struct proto_audit_query *q);

#endif
