/* names.c: the wire names of metrics, storages and combine modes. */
#include <string.h>

#include "index.h"

static const char *const metric_names[] = {"ip", "cosine", "l2"};
static const char *const storage_names[] = {"f32", "f16", "i8", "b1"};
static const char *const combine_names[] = {"sum", "max", "interleave"};

const char *vs_metric_name(vs_metric m) { return (unsigned)m < 3 ? metric_names[m] : "?"; }
const char *vs_storage_name(vs_storage s) { return (unsigned)s < 4 ? storage_names[s] : "?"; }
const char *vs_combine_name(vs_combine c) { return (unsigned)c < 3 ? combine_names[c] : "?"; }

/* Index of s in names[0..n), or -1. */
static int find_name(const char *const *names, int n, const char *s)
{
    for (int i = 0; s && i < n; i++)
        if (strcmp(names[i], s) == 0)
            return i;
    return -1;
}

bool vs_metric_parse(const char *s, vs_metric *out)
{
    int i = find_name(metric_names, 3, s);
    if (i >= 0)
        *out = (vs_metric)i;
    return i >= 0;
}

bool vs_storage_parse(const char *s, vs_storage *out)
{
    int i = find_name(storage_names, 4, s);
    if (i >= 0)
        *out = (vs_storage)i;
    return i >= 0;
}

bool vs_combine_parse(const char *s, vs_combine *out)
{
    int i = find_name(combine_names, 3, s);
    if (i >= 0)
        *out = (vs_combine)i;
    return i >= 0;
}
