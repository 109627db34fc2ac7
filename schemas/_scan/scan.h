/* One-pass JSON scanning into Arrow string columns: what the two scanners share.
 *
 * real.c reads realtime REAL frames, pages.c REST response pages. Both read only the JSON they
 * expect, copy the values they are asked for into Arrow-style string columns (int32 offsets,
 * UTF-8 bytes, a validity bitmap) and convert nothing: the typed conversion and its errors stay
 * in Python (schemas.normalize.convert), the same on every path. Anything unexpected makes a scan
 * return None and the caller reads the input with the general JSON reader, which either reads
 * it or names what is wrong; so a scan never decides what an odd input means.
 *
 * Memory: the scans run without the GIL, so every allocation is PyMem_Raw* (thread-safe);
 * PyMem_Malloc and friends need the GIL and corrupt the heap without it.
 *
 * Strings: no escape sequences (a backslash sends the input to the general reader), no control
 * characters, valid UTF-8 (no overlong forms, no surrogates).
 */
#ifndef KWH_SCAN_H
#define KWH_SCAN_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define SLOTS 1024 /* key hash slots: a power of two, more than twice the most keys asked for */

typedef struct {
    char *data;
    Py_ssize_t len, cap;
} Buf;

/* A string column: offsets[rows + 1], the bytes, a validity bit per row. */
typedef struct {
    Buf offsets, data, valid;
    Py_ssize_t rows, nulls;
} Col;

/* The keys asked for, found by a hash of their bytes. */
typedef struct {
    Py_ssize_t n;
    const char **keys;
    Py_ssize_t *lens;
    uint64_t packed[SLOTS]; /* a key of up to 7 bytes as one number (its bytes and length) */
    int16_t slots[SLOTS];   /* key index + 1; 0: empty */
} Keys;

typedef struct {
    const unsigned char *p, *end;
} Cur;

/* What a scan step found: read, not as expected (the general reader takes over), out of memory. */
enum { NOT_EXPECTED = 0, READ = 1, NO_MEMORY = -1 };

static int buf_put(Buf *b, const void *src, Py_ssize_t n) {
    if (b->len + n > b->cap) {
        Py_ssize_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n) cap *= 2;
        char *grown = PyMem_RawRealloc(b->data, cap);
        if (!grown) return NO_MEMORY;
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, src, n);
    b->len += n;
    return READ;
}

static void buf_free(Buf *b) {
    PyMem_RawFree(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

static int col_init(Col *c) {
    int32_t zero = 0;
    memset(c, 0, sizeof *c);
    return buf_put(&c->offsets, &zero, sizeof zero);
}

static void col_free(Col *c) {
    buf_free(&c->offsets);
    buf_free(&c->data);
    buf_free(&c->valid);
}

/* Append a value (s != NULL) or a null. NOT_EXPECTED past 2 GiB of one column. */
static int col_put(Col *c, const unsigned char *s, Py_ssize_t n) {
    if (c->rows % 8 == 0) {
        unsigned char none = 0;
        if (buf_put(&c->valid, &none, 1) < 0) return NO_MEMORY;
    }
    if (s) {
        if (c->data.len + n > INT32_MAX) return NOT_EXPECTED;
        if (buf_put(&c->data, s, n) < 0) return NO_MEMORY;
        c->valid.data[c->rows / 8] |= (unsigned char)(1u << (c->rows % 8));
    } else
        c->nulls++;
    int32_t end = (int32_t)c->data.len;
    c->rows++;
    return buf_put(&c->offsets, &end, sizeof end) < 0 ? NO_MEMORY : READ;
}

/* (offsets, data, validity or None, nulls) for Python; a new reference or NULL. */
static PyObject *col_tuple(Col *c) {
    PyObject *valid = c->nulls ? PyBytes_FromStringAndSize(c->valid.data, c->valid.len) : Py_NewRef(Py_None);
    return Py_BuildValue("(y#y#Nn)", c->offsets.data, c->offsets.len, c->data.data ? c->data.data : "",
                         c->data.len, valid, c->nulls);
}

/* ---- keys ---- */

static uint64_t pack(const unsigned char *s, Py_ssize_t n) {
    if (n > 7) return 0;
    uint64_t v = (uint64_t)n << 56;
    for (Py_ssize_t i = 0; i < n; i++) v |= (uint64_t)s[i] << (8 * i);
    return v;
}

static uint32_t slot_of(uint64_t packed, const unsigned char *s, Py_ssize_t n) {
    if (!packed) { /* a long key: FNV-1a of its bytes */
        uint64_t h = 14695981039346656037ull;
        for (Py_ssize_t i = 0; i < n; i++) h = (h ^ s[i]) * 1099511628211ull;
        packed = h;
    }
    return (uint32_t)((packed * 0x9E3779B97F4A7C15ull) >> 54) & (SLOTS - 1);
}

static int keys_find(const Keys *k, const unsigned char *s, Py_ssize_t n) {
    uint64_t v = pack(s, n);
    for (uint32_t h = slot_of(v, s, n);; h = (h + 1) & (SLOTS - 1)) {
        int i = k->slots[h];
        if (!i) return -1;
        i -= 1;
        if (v ? k->packed[h] == v : (k->lens[i] == n && memcmp(k->keys[i], s, n) == 0)) return i;
    }
}

static void keys_free(Keys *k) {
    PyMem_RawFree(k->keys);
    PyMem_RawFree(k->lens);
    k->keys = NULL;
    k->lens = NULL;
}

/* A tuple of str to a key table; -1 with an exception set. The strings stay owned by the tuple. */
static int keys_load(Keys *k, PyObject *tuple, PyObject *owner) {
    memset(k, 0, sizeof *k);
    if (!PyTuple_Check(tuple)) {
        PyErr_Format(PyExc_TypeError, "%S: the keys must be a tuple of str", owner);
        return -1;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(tuple);
    if (n * 2 >= SLOTS) {
        PyErr_Format(PyExc_ValueError, "%S: %zd keys, at most %d", owner, n, SLOTS / 2 - 1);
        return -1;
    }
    k->keys = PyMem_RawCalloc(n ? n : 1, sizeof(char *));
    k->lens = PyMem_RawCalloc(n ? n : 1, sizeof(Py_ssize_t));
    if (!k->keys || !k->lens) {
        keys_free(k);
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *key = PyTuple_GET_ITEM(tuple, i);
        const unsigned char *s;
        if (!PyUnicode_Check(key) || !(k->keys[i] = PyUnicode_AsUTF8AndSize(key, &k->lens[i]))) {
            if (!PyErr_Occurred()) PyErr_Format(PyExc_TypeError, "%S: the keys must be str", owner);
            keys_free(k);
            return -1;
        }
        s = (const unsigned char *)k->keys[i];
        if (keys_find(k, s, k->lens[i]) >= 0) {
            PyErr_Format(PyExc_ValueError, "%S lists the key %R twice", owner, key);
            keys_free(k);
            return -1;
        }
        uint64_t v = pack(s, k->lens[i]);
        uint32_t h = slot_of(v, s, k->lens[i]);
        while (k->slots[h]) h = (h + 1) & (SLOTS - 1);
        k->slots[h] = (int16_t)(i + 1);
        k->packed[h] = v;
        k->n = i + 1;
    }
    return 0;
}

/* ---- reading JSON ---- */

/* What a byte inside a string is: 0 plain, 1 the closing quote, 2 not allowed (an escape, a
   control character), 3 the lead of a multi-byte UTF-8 sequence (checked on its own). */
extern unsigned char kwh_scan_class[256];

static void ws(Cur *c) {
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r')) c->p++;
}

static inline int lit(Cur *c, char ch) {
    if (c->p < c->end && *c->p == (unsigned char)ch) { /* compact JSON: no whitespace */
        c->p++;
        return 1;
    }
    ws(c);
    if (c->p < c->end && *c->p == (unsigned char)ch) {
        c->p++;
        return 1;
    }
    return 0;
}

/* The first byte at or after p that is not plain, eight at a time: the lowest byte of a word
   that is a quote, a backslash, under 0x20 or over 0x7F. The has-zero trick can flag a byte
   above a true hit, never below one, so the lowest flag is exact. Near the end, byte by byte. */
static inline const unsigned char *skip_plain(const unsigned char *p, const unsigned char *end) {
#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    while (end - p >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        uint64_t q = v ^ (ones * '"'), b = v ^ (ones * '\\'), c = v & (ones * 0xE0);
        uint64_t hit = (((q - ones) & ~q) | ((b - ones) & ~b) | ((c - ones) & ~c) | v) & highs;
        if (hit) return p + (__builtin_ctzll(hit) >> 3);
        p += 8;
    }
#endif
    while (p < end && kwh_scan_class[*p] == 0) p++;
    return p;
}

/* A JSON string as described above: its contents in [*s, *s + *n). 0 if not one. */
static int str(Cur *c, const unsigned char **s, Py_ssize_t *n) {
    if (!lit(c, '"')) return 0;
    const unsigned char *p = c->p, *end = c->end;
    *s = p;
    while (p < end) {
        p = skip_plain(p, end);
        if (p >= end) break;
        unsigned char ch = *p, kind = kwh_scan_class[ch];
        if (kind == 0) {
            p++;
            continue;
        }
        if (kind == 1) {
            *n = p - *s;
            c->p = p + 1;
            return 1;
        }
        if (kind == 2) return 0;
        int more; /* UTF-8: the lead byte's length, continuation bytes, no overlong forms or surrogates */
        unsigned char lo = 0x80, hi = 0xBF;
        if (ch >= 0xC2 && ch <= 0xDF) more = 1;
        else if (ch >= 0xE0 && ch <= 0xEF) {
            more = 2;
            if (ch == 0xE0) lo = 0xA0;
            if (ch == 0xED) hi = 0x9F;
        } else if (ch >= 0xF0 && ch <= 0xF4) {
            more = 3;
            if (ch == 0xF0) lo = 0x90;
            if (ch == 0xF4) hi = 0x8F;
        } else
            return 0;
        if (end - p <= more) return 0;
        if (p[1] < lo || p[1] > hi) return 0;
        for (int i = 2; i <= more; i++)
            if (p[i] < 0x80 || p[i] > 0xBF) return 0;
        p += more + 1;
    }
    return 0;
}

static int key_is(const unsigned char *s, Py_ssize_t n, const char *want) {
    return (Py_ssize_t)strlen(want) == n && memcmp(s, want, n) == 0;
}

static int word(Cur *c, const char *w) {
    Py_ssize_t n = (Py_ssize_t)strlen(w);
    ws(c);
    if (c->end - c->p < n || memcmp(c->p, w, n) != 0) return 0;
    c->p += n;
    return 1;
}

/* A JSON number (its grammar exactly); *integer tells whether it has no fraction or exponent. */
static int number(Cur *c, const unsigned char **s, Py_ssize_t *n, int *integer) {
    ws(c);
    const unsigned char *p = c->p, *end = c->end;
    *s = p;
    *integer = 1;
    if (p < end && *p == '-') p++;
    if (p >= end || *p < '0' || *p > '9') return 0;
    if (*p == '0') p++;
    else
        while (p < end && *p >= '0' && *p <= '9') p++;
    if (p < end && *p == '.') {
        *integer = 0;
        if (++p >= end || *p < '0' || *p > '9') return 0;
        while (p < end && *p >= '0' && *p <= '9') p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        *integer = 0;
        if (++p < end && (*p == '+' || *p == '-')) p++;
        if (p >= end || *p < '0' || *p > '9') return 0;
        while (p < end && *p >= '0' && *p <= '9') p++;
    }
    *n = p - *s;
    c->p = p;
    return 1;
}

/* Any JSON value, read and dropped; nested up to ``depth`` levels. */
static int skip_value(Cur *c, int depth) {
    const unsigned char *s;
    Py_ssize_t n;
    int integer;
    ws(c);
    if (c->p >= c->end || depth < 0) return 0;
    switch (*c->p) {
    case '"':
        return str(c, &s, &n);
    case 't':
        return word(c, "true");
    case 'f':
        return word(c, "false");
    case 'n':
        return word(c, "null");
    case '[':
        c->p++;
        if (lit(c, ']')) return 1;
        do
            if (!skip_value(c, depth - 1)) return 0;
        while (lit(c, ','));
        return lit(c, ']');
    case '{':
        c->p++;
        if (lit(c, '}')) return 1;
        do
            if (!str(c, &s, &n) || !lit(c, ':') || !skip_value(c, depth - 1)) return 0;
        while (lit(c, ','));
        return lit(c, '}');
    default:
        return number(c, &s, &n, &integer);
    }
}

/* The input's end: nothing but whitespace after the value. */
static int at_end(Cur *c) {
    ws(c);
    return c->p == c->end;
}

#endif
