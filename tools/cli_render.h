/* Output of the virtcloud CLI: one document, rendered as JSON or for
 * humans.
 *
 * A document is a msgpack_object: the payload an agent sent, or a small
 * map the command built with render_map() & co. A view describes the keys
 * a command knows about. Both renderings walk the same document with the
 * same view (iproute2's print_*(PRINT_ANY, ...) idea):
 *   - JSON prints the view's keys in view order (null, or [] for lists,
 *     when the agent left one out) followed by every other key the agent
 *     sent, untouched, so scripts see new fields without a CLI update;
 *   - humans get an aligned table (lists) or "label: value" lines followed
 *     by sub-tables (one object), showing only the view's keys.
 * Documents are untrusted: any key may be missing or of another type, and
 * strings may hold control characters or invalid UTF-8. JSON output stays
 * valid (escaped, U+FFFD for bad bytes) and human output never passes
 * control characters to the terminal.
 */
#ifndef VC_TOOLS_CLI_RENDER_H
#define VC_TOOLS_CLI_RENDER_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <msgpack.h>

enum render_kind {
    RENDER_ANY,   /* scalar as sent; an array of scalars joined by ',' */
    RENDER_LIST,  /* array of scalars (JSON [] when missing) */
    RENDER_BOOL,  /* humans: yes / no */
    RENDER_MARK,  /* humans: '*' when true, nothing when false */
    RENDER_TIME,  /* ms since the epoch; humans: local date and time */
    RENDER_LEFT,  /* deadline in ms since the epoch; humans: time left */
    RENDER_COUNT, /* array; humans: its number of elements */
    RENDER_TABLE, /* array of maps described by sub */
};

enum render_flag {
    RENDER_COLUMN = 1, /* a column when a list is shown as a table */
    RENDER_LINE = 2,   /* a line (or sub-table) when one object is shown */
    RENDER_ALIAS = 4,  /* another view of a key listed before: not JSON */
};

struct render_view;

struct render_field {
    const char *key;   /* key in the document */
    const char *title; /* column heading or line label for humans */
    enum render_kind kind;
    unsigned flags;                /* enum render_flag */
    const struct render_view *sub; /* RENDER_TABLE: the rows' view */
};

struct render_view {
    const struct render_field *fields;
    size_t n;
};

#define RENDER_VIEW(fields)                                                    \
    {                                                                          \
        fields, sizeof fields / sizeof fields[0]                               \
    }

/* Prints the list o (an array of maps) as one JSON array or as a table,
 * and a newline. A non-array prints as an empty list. Returns 0 or
 * VC_ENOMEM. */
int render_list(FILE *f, bool json, const msgpack_object *o,
                const struct render_view *v);

/* Prints the map o as one JSON object or as lines and sub-tables. */
int render_object(FILE *f, bool json, const msgpack_object *o,
                  const struct render_view *v);

/* Prints o as JSON: through v where o is a map, else verbatim. */
void render_json(FILE *f, const msgpack_object *o, const struct render_view *v);

/* The value of key in map, or NULL (also when map is not a map). */
const msgpack_object *render_get(const msgpack_object *map, const char *key);

/* Builders for documents made by the CLI itself. Strings and arrays are
 * borrowed: they must outlive the document. */
msgpack_object render_str(const char *s);
msgpack_object render_uint(uint64_t v);
msgpack_object render_int(int64_t v);
msgpack_object render_bool(bool b);
msgpack_object render_array(msgpack_object *items, uint32_t n);
msgpack_object render_map(msgpack_object_kv *kv, uint32_t n);
msgpack_object_kv render_kv(const char *key, msgpack_object val);

#endif
