/* metrics.c - counters and the Prometheus text; see metrics.h. */
#include "metrics.h"

#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include "activity.h"
#include "durable.h"
#include "oplog.h"

/* Each is atomic, updated and read with relaxed order; no lock. */
static atomic_ulong ops[OP_COUNT][RESULT_CODES];
static atomic_ulong conns_opened, conns_closed;
static atomic_ulong refused[REFUSED_KINDS];
static atomic_ulong probes, probes_dead, expiries;

/* The labels of enum refusal, in its order. */
static const char *const refusal_names[REFUSED_KINDS] = {
    "cap", "per_source", "deadline", "malformed"};

/* Add one to counter c, with no ordering (nothing is published through it). */
static void bump(atomic_ulong *c)
{
    atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

/* The value of counter c now. */
static unsigned long get(atomic_ulong *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

void metrics_operation(enum op op, unsigned code, const char *user, const char *path)
{
    if (op < 0 || op >= OP_COUNT)
        return;
    bump(&ops[op][code < RESULT_CODES ? code : RESULT_CODES - 1]);
    if (user != NULL)
        activity_record(op_name(op), code, user, path);
}

void metrics_conn_opened(void)
{
    bump(&conns_opened);
}

void metrics_conn_closed(void)
{
    bump(&conns_closed);
}

void metrics_refused(enum refusal why)
{
    if (why < REFUSED_KINDS)
        bump(&refused[why]);
}

void metrics_probe(bool dead)
{
    bump(dead ? &probes_dead : &probes);
}

void metrics_expiry(const char *user)
{
    bump(&expiries);
    activity_record("EXPIRED", 0, user, NULL);
}

unsigned long metrics_operations(enum op op, unsigned code)
{
    return op >= 0 && op < OP_COUNT && code < RESULT_CODES ? get(&ops[op][code]) : 0;
}

void metrics_totals(struct metrics_totals *t)
{
    t->operations = 0;
    for (int op = 0; op < OP_COUNT; op++)
        for (unsigned c = 0; c < RESULT_CODES; c++)
            t->operations += get(&ops[op][c]);
    unsigned long closed = get(&conns_closed), opened = get(&conns_opened);
    t->connections_open = opened >= closed ? opened - closed : 0;
    t->expiries = get(&expiries);
}

/* The monotonic clock's reading at start: the first call sets it. */
static struct timespec start;

double metrics_uptime(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (start.tv_sec == 0 && start.tv_nsec == 0)
        start = now;            /* main() calls this once before any thread */
    return (double)(now.tv_sec - start.tv_sec) + (now.tv_nsec - start.tv_nsec) / 1e9;
}

/* One metric's HELP and TYPE lines. */
static void head(FILE *out, const char *name, const char *type, const char *help)
{
    fprintf(out, "# HELP peerdex_%s %s\n# TYPE peerdex_%s %s\n", name, help, name, type);
}

void metrics_write(FILE *out, struct registry *reg)
{
    head(out, "operations_total", "counter",
         "Operations performed, by operation and result code.");
    for (int op = 0; op < OP_COUNT; op++)
        for (unsigned c = 0; c < RESULT_CODES; c++) {
            unsigned long n = get(&ops[op][c]);
            if (n > 0 || c == 0)
                fprintf(out, "peerdex_operations_total{op=\"%s\",result=\"%u\"} %lu\n",
                        op_name((enum op)op), c, n);
        }

    struct metrics_totals t;
    metrics_totals(&t);
    head(out, "connections_open", "gauge", "Connections being served now.");
    fprintf(out, "peerdex_connections_open %lu\n", t.connections_open);
    head(out, "connections_total", "counter", "Connections admitted since start.");
    fprintf(out, "peerdex_connections_total %lu\n", get(&conns_opened));
    head(out, "connections_refused_total", "counter",
         "Connections served no operation, by reason.");
    for (int r = 0; r < REFUSED_KINDS; r++)
        fprintf(out, "peerdex_connections_refused_total{reason=\"%s\"} %lu\n",
                refusal_names[r], get(&refused[r]));

    struct reg_totals r;
    size_t none;
    registry_view(reg, NULL, 0, &none, &r);
    head(out, "users_registered", "gauge", "Users registered.");
    fprintf(out, "peerdex_users_registered %zu\n", r.users);
    head(out, "users_connected", "gauge", "Users connected.");
    fprintf(out, "peerdex_users_connected %zu\n", r.connected);
    head(out, "files", "gauge", "Files published, all users together.");
    fprintf(out, "peerdex_files %zu\n", r.files);

    head(out, "liveness_probes_total", "counter",
         "Liveness probes of connected users' endpoints, by outcome.");
    fprintf(out, "peerdex_liveness_probes_total{outcome=\"alive\"} %lu\n", get(&probes));
    fprintf(out, "peerdex_liveness_probes_total{outcome=\"dead\"} %lu\n", get(&probes_dead));
    head(out, "liveness_expiries_total", "counter", "Sessions expired by the prober.");
    fprintf(out, "peerdex_liveness_expiries_total %lu\n", get(&expiries));

    uint64_t depth;
    double oldest;
    oplog_backlog(&depth, &oldest);
    head(out, "log_outbox_entries", "gauge",
         "Operation log entries not yet acknowledged by the log server.");
    fprintf(out, "peerdex_log_outbox_entries %llu\n", (unsigned long long)depth);
    head(out, "log_outbox_oldest_seconds", "gauge",
         "Age of the oldest unacknowledged operation log entry (0: none).");
    fprintf(out, "peerdex_log_outbox_oldest_seconds %.3f\n", oldest);

    uint64_t journal, snapshot;
    durable_sizes(&journal, &snapshot);
    head(out, "journal_bytes", "gauge", "Bytes of the journal segments (0 without -d).");
    fprintf(out, "peerdex_journal_bytes %llu\n", (unsigned long long)journal);
    head(out, "snapshot_bytes", "gauge", "Bytes of the snapshot file (0 without -d).");
    fprintf(out, "peerdex_snapshot_bytes %llu\n", (unsigned long long)snapshot);
    head(out, "journal_sync_failed", "gauge",
         "1 once a journal fdatasync failed: changes refused until a restart (0 without -d).");
    fprintf(out, "peerdex_journal_sync_failed %d\n", durable_failed() ? 1 : 0);

    head(out, "uptime_seconds", "gauge", "Seconds since the server started.");
    fprintf(out, "peerdex_uptime_seconds %.3f\n", metrics_uptime());
}
