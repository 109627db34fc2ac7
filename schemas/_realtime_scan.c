/* The streaming decoder's scanner: REAL frames -> one string column per wanted key, in C.
 *
 * schemas/realtime_fast.py calls scan(frames, wanted) with the logged frames (bytes) and,
 * per realtime type code, the FIDs whose values it stores. One pass over each frame reads
 * the JSON it expects, a REAL frame written as Kiwoom writes it, in any key order and with any
 * whitespace:
 *
 *     {"trnm":"REAL","data":[{"type":"0B","name":"...","item":"005930",
 *                             "values":{"20":"090010","10":"+81500",...}}, ...]}
 *
 * and copies, for every entry, its "item" and the values of the wanted FIDs into Arrow-style
 * string columns (int32 offsets + bytes). It converts nothing: the typed conversion and its
 * errors stay in Python (schemas.realtime.typed_entries), the same for every path.
 *
 * It returns None (the caller then reads the batch with the general JSON reader, which either
 * reads it or names what is wrong) for anything else: a frame that is not a JSON object with
 * trnm "REAL" and a data list, an entry without type, item or values or with "values" before
 * "type", a value that is not a string, an escape sequence, invalid UTF-8, a type code not in
 * ``wanted``, an entry lacking a wanted FID or holding one twice, or columns past 2 GiB. The
 * scanner never guesses: a frame it returns columns for is one the general reader would read to
 * the same strings.
 *
 * Returns {code: (entries, frame_index, [(offsets, data), ...])} in the order the codes first
 * appear, with frame_index int32 per entry (the frame it came from) and the columns in the
 * order ("item", *wanted[code]).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define SLOTS 1024 /* hash slots per type: a power of two, more than twice the most keys of a type */

typedef struct {
    char *data;
    Py_ssize_t len, cap;
} Buf;

typedef struct {
    PyObject *code; /* str */
    const char *code_s;
    Py_ssize_t code_len;
    Py_ssize_t ncols; /* 1 + wanted keys: column 0 is item */
    const char **keys;
    Py_ssize_t *key_lens;
    uint64_t packed[SLOTS]; /* a key of up to 7 bytes as one number: its bytes and its length */
    int16_t slots[SLOTS];   /* key index + 1, 0: empty */
    Buf index;            /* int32 frame index per entry */
    Buf *offsets;         /* per column: int32 offsets, entries + 1 of them */
    Buf *data;            /* per column: the bytes */
    Py_ssize_t entries;
    int order; /* first appearance; -1: not seen */
} Type;

typedef struct {
    const unsigned char *p, *end;
} Cur;

static int buf_put(Buf *b, const void *src, Py_ssize_t n) {
    if (b->len + n > b->cap) {
        Py_ssize_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n) cap *= 2;
        char *grown = PyMem_Realloc(b->data, cap);
        if (!grown) return -1;
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, src, n);
    b->len += n;
    return 0;
}

/* Keys are FIDs of a few digits: up to 7 bytes pack into one number (0: a longer key). */
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

static int find_key(const Type *t, const unsigned char *s, Py_ssize_t n) {
    uint64_t v = pack(s, n);
    for (uint32_t h = slot_of(v, s, n);; h = (h + 1) & (SLOTS - 1)) {
        int k = t->slots[h];
        if (!k) return -1;
        k -= 1;
        if (v ? t->packed[h] == v : (t->key_lens[k] == n && memcmp(t->keys[k], s, n) == 0)) return k;
    }
}

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

/* What a byte inside a string is: 0 plain, 1 the closing quote, 2 not allowed here (an escape or a
   control character), 3 the lead of a multi-byte UTF-8 sequence (checked on its own). */
static unsigned char CLASS[256];

static void init_classes(void) {
    for (int ch = 0; ch < 256; ch++) CLASS[ch] = ch < 0x20 || ch == '\\' ? 2 : ch == '"' ? 1 : ch >= 0x80 ? 3 : 0;
}

/* The first byte at or after p that is not plain (CLASS 0), eight at a time: the lowest byte of a
   word that is a quote, a backslash, under 0x20 or over 0x7F. The has-zero trick can flag a byte
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
    while (p < end && CLASS[*p] == 0) p++;
    return p;
}

/* A JSON string without escapes, as valid UTF-8: its contents in [*s, *s + *n). 0 if not one. */
static int str(Cur *c, const unsigned char **s, Py_ssize_t *n) {
    if (!lit(c, '"')) return 0;
    const unsigned char *p = c->p, *end = c->end;
    *s = p;
    while (p < end) {
        p = skip_plain(p, end);
        if (p >= end) break;
        unsigned char ch = *p, kind = CLASS[ch];
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
        /* UTF-8: the lead byte's length, continuation bytes, no overlong forms or surrogates */
        int more;
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
        } else return 0;
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

static int put_value(Type *t, Py_ssize_t col, const unsigned char *s, Py_ssize_t n) {
    Buf *d = &t->data[col];
    if (d->len + n > INT32_MAX) return 0;
    if (buf_put(d, s, n) < 0) return -1;
    int32_t end = (int32_t)d->len;
    return buf_put(&t->offsets[col], &end, sizeof end) < 0 ? -1 : 1;
}

/* One entry object; 1 read, 0 not as expected, -1 out of memory. */
static int entry(Cur *c, Type *types, Py_ssize_t ntypes, int32_t frame, int *seen, const unsigned char **vals,
                 Py_ssize_t *val_lens) {
    if (!lit(c, '{')) return 0;
    Type *t = NULL;
    const unsigned char *item = NULL, *s;
    Py_ssize_t item_len = 0, n;
    int got_values = 0;
    if (lit(c, '}')) return 0;
    do {
        const unsigned char *k;
        Py_ssize_t kn;
        if (!str(c, &k, &kn) || !lit(c, ':')) return 0;
        if (key_is(k, kn, "values")) {
            if (t == NULL || got_values || !lit(c, '{')) return 0;
            got_values = 1;
            for (Py_ssize_t i = 0; i < t->ncols; i++) vals[i] = NULL;
            if (!lit(c, '}')) {
                do {
                    const unsigned char *f;
                    Py_ssize_t fn;
                    if (!str(c, &f, &fn) || !lit(c, ':') || !str(c, &s, &n)) return 0;
                    int at = find_key(t, f, fn);
                    if (at >= 0) {
                        if (vals[at + 1]) return 0; /* a wanted FID twice */
                        vals[at + 1] = s;
                        val_lens[at + 1] = n;
                    }
                } while (lit(c, ','));
                if (!lit(c, '}')) return 0;
            }
        } else {
            if (!str(c, &s, &n)) return 0;
            if (key_is(k, kn, "type")) {
                if (t != NULL) return 0;
                for (Py_ssize_t i = 0; i < ntypes && t == NULL; i++)
                    if (types[i].code_len == n && memcmp(types[i].code_s, s, n) == 0) t = &types[i];
                if (t == NULL) return 0;
            } else if (key_is(k, kn, "item")) {
                if (item) return 0;
                item = s;
                item_len = n;
            }
        }
    } while (lit(c, ','));
    if (!lit(c, '}') || t == NULL || !got_values || item == NULL) return 0;
    vals[0] = item;
    val_lens[0] = item_len;
    for (Py_ssize_t i = 0; i < t->ncols; i++) {
        if (!vals[i]) return 0; /* a wanted FID missing */
        int r = put_value(t, i, vals[i], val_lens[i]);
        if (r <= 0) return r;
    }
    if (buf_put(&t->index, &frame, sizeof frame) < 0) return -1;
    if (t->order < 0) t->order = (*seen)++;
    t->entries++;
    return 1;
}

/* One frame; 1 read, 0 not as expected, -1 out of memory. */
static int frame(const unsigned char *p, Py_ssize_t len, int32_t index, Type *types, Py_ssize_t ntypes, int *seen,
                 const unsigned char **vals, Py_ssize_t *val_lens) {
    Cur c = {p, p + len};
    int real = 0, data = 0;
    if (!lit(&c, '{') || lit(&c, '}')) return 0;
    do {
        const unsigned char *k, *s;
        Py_ssize_t kn, n;
        if (!str(&c, &k, &kn) || !lit(&c, ':')) return 0;
        if (key_is(k, kn, "data")) {
            if (data || !lit(&c, '[')) return 0;
            data = 1;
            if (lit(&c, ']')) continue;
            do {
                int r = entry(&c, types, ntypes, index, seen, vals, val_lens);
                if (r <= 0) return r;
            } while (lit(&c, ','));
            if (!lit(&c, ']')) return 0;
        } else {
            if (!str(&c, &s, &n)) return 0;
            if (key_is(k, kn, "trnm")) {
                if (real || !key_is(s, n, "REAL")) return 0;
                real = 1;
            }
        }
    } while (lit(&c, ','));
    if (!lit(&c, '}')) return 0;
    ws(&c);
    return c.p == c.end && real && data;
}

static void free_types(Type *types, Py_ssize_t ntypes) {
    for (Py_ssize_t i = 0; i < ntypes; i++) {
        Type *t = &types[i];
        PyMem_Free(t->keys);
        PyMem_Free(t->key_lens);
        PyMem_Free(t->index.data);
        for (Py_ssize_t j = 0; t->offsets && j < t->ncols; j++) {
            PyMem_Free(t->offsets[j].data);
            PyMem_Free(t->data[j].data);
        }
        PyMem_Free(t->offsets);
        PyMem_Free(t->data);
    }
    PyMem_Free(types);
}

/* wanted: {code: tuple of FID str} -> the types, their key tables and empty columns. */
static Type *load_types(PyObject *wanted, Py_ssize_t *ntypes) {
    Py_ssize_t n = PyDict_Size(wanted), pos = 0, i = 0;
    Type *types = PyMem_Calloc(n ? n : 1, sizeof(Type));
    if (!types) return (Type *)PyErr_NoMemory();
    *ntypes = n;
    PyObject *code, *keys;
    while (PyDict_Next(wanted, &pos, &code, &keys)) {
        Type *t = &types[i++];
        t->order = -1;
        t->code = code;
        if (!PyUnicode_Check(code) || !PyTuple_Check(keys)) {
            PyErr_SetString(PyExc_TypeError, "wanted maps type codes (str) to tuples of FIDs (str)");
            goto fail;
        }
        t->code_s = PyUnicode_AsUTF8AndSize(code, &t->code_len);
        Py_ssize_t nk = PyTuple_GET_SIZE(keys);
        if (!t->code_s) goto fail;
        if (nk * 2 >= SLOTS) {
            PyErr_Format(PyExc_ValueError, "type %U: %zd FIDs, at most %d", code, nk, SLOTS / 2 - 1);
            goto fail;
        }
        t->ncols = nk + 1;
        t->keys = PyMem_Calloc(nk ? nk : 1, sizeof(char *));
        t->key_lens = PyMem_Calloc(nk ? nk : 1, sizeof(Py_ssize_t));
        t->offsets = PyMem_Calloc(t->ncols, sizeof(Buf));
        t->data = PyMem_Calloc(t->ncols, sizeof(Buf));
        if (!t->keys || !t->key_lens || !t->offsets || !t->data) {
            PyErr_NoMemory();
            goto fail;
        }
        for (Py_ssize_t k = 0; k < nk; k++) {
            PyObject *key = PyTuple_GET_ITEM(keys, k);
            if (!PyUnicode_Check(key)) {
                PyErr_SetString(PyExc_TypeError, "FIDs must be str");
                goto fail;
            }
            t->keys[k] = PyUnicode_AsUTF8AndSize(key, &t->key_lens[k]);
            if (!t->keys[k]) goto fail;
            if (find_key(t, (const unsigned char *)t->keys[k], t->key_lens[k]) >= 0) {
                PyErr_Format(PyExc_ValueError, "type %U lists FID %U twice", code, key);
                goto fail;
            }
            const unsigned char *ks = (const unsigned char *)t->keys[k];
            uint64_t v = pack(ks, t->key_lens[k]);
            uint32_t h = slot_of(v, ks, t->key_lens[k]);
            while (t->slots[h]) h = (h + 1) & (SLOTS - 1);
            t->slots[h] = (int16_t)(k + 1);
            t->packed[h] = v;
        }
        int32_t zero = 0;
        for (Py_ssize_t j = 0; j < t->ncols; j++)
            if (buf_put(&t->offsets[j], &zero, sizeof zero) < 0) {
                PyErr_NoMemory();
                goto fail;
            }
    }
    return types;
fail:
    free_types(types, n);
    return NULL;
}

static PyObject *bytes_of(Buf *b) {
    return PyBytes_FromStringAndSize(b->data ? b->data : "", b->len);
}

static PyObject *result(Type *types, Py_ssize_t ntypes, int seen) {
    PyObject *out = PyDict_New();
    if (!out) return NULL;
    for (int order = 0; order < seen; order++) {
        Type *t = NULL;
        for (Py_ssize_t i = 0; i < ntypes; i++)
            if (types[i].order == order) t = &types[i];
        PyObject *cols = PyList_New(t->ncols);
        if (!cols) goto fail;
        for (Py_ssize_t j = 0; j < t->ncols; j++) {
            PyObject *col = Py_BuildValue("(NN)", bytes_of(&t->offsets[j]), bytes_of(&t->data[j]));
            if (!col) {
                Py_DECREF(cols);
                goto fail;
            }
            PyList_SET_ITEM(cols, j, col);
        }
        PyObject *one = Py_BuildValue("(nNN)", t->entries, bytes_of(&t->index), cols);
        if (!one || PyDict_SetItem(out, t->code, one) < 0) {
            Py_XDECREF(one);
            goto fail;
        }
        Py_DECREF(one);
    }
    return out;
fail:
    Py_DECREF(out);
    return NULL;
}

static PyObject *scan(PyObject *Py_UNUSED(self), PyObject *args) {
    PyObject *frames, *wanted;
    if (!PyArg_ParseTuple(args, "O!O!:scan", &PyList_Type, &frames, &PyDict_Type, &wanted)) return NULL;
    Py_ssize_t nframes = PyList_GET_SIZE(frames), ntypes = 0, most = 1;
    if (nframes > INT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "too many frames for one scan");
        return NULL;
    }
    for (Py_ssize_t i = 0; i < nframes; i++)
        if (!PyBytes_Check(PyList_GET_ITEM(frames, i))) {
            PyErr_SetString(PyExc_TypeError, "frames must be a list of bytes");
            return NULL;
        }
    Type *types = load_types(wanted, &ntypes);
    if (!types) return NULL;
    for (Py_ssize_t i = 0; i < ntypes; i++)
        if (types[i].ncols > most) most = types[i].ncols;
    const unsigned char **vals = PyMem_Calloc(most, sizeof(char *));
    Py_ssize_t *val_lens = PyMem_Calloc(most, sizeof(Py_ssize_t));
    if (!vals || !val_lens) {
        PyMem_Free(vals);
        PyMem_Free(val_lens);
        free_types(types, ntypes);
        return PyErr_NoMemory();
    }
    int seen = 0, r = 1;
    /* the frames list is not touched by anyone while the GIL is released: the bytes are immutable
       and the list holds them; the caller passes a list of its own */
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < nframes && r == 1; i++) {
        PyObject *f = PyList_GET_ITEM(frames, i);
        r = frame((const unsigned char *)PyBytes_AS_STRING(f), PyBytes_GET_SIZE(f), (int32_t)i, types, ntypes,
                  &seen, vals, val_lens);
    }
    Py_END_ALLOW_THREADS
    PyMem_Free(vals);
    PyMem_Free(val_lens);
    PyObject *out;
    if (r < 0) out = PyErr_NoMemory();
    else if (r == 0) out = Py_NewRef(Py_None);
    else out = result(types, ntypes, seen);
    free_types(types, ntypes);
    return out;
}

static PyMethodDef methods[] = {
    {"scan", scan, METH_VARARGS,
     "scan(frames: list[bytes], wanted: dict[str, tuple[str, ...]]) -> dict | None\n\n"
     "Per type code, (entries, frame index int32 bytes, [(int32 offsets, data) per column]) with\n"
     "the columns ('item', *wanted[code]); None if a frame is not a REAL frame as expected."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_realtime_scan",
                                    "One pass over REAL frames to string columns.", -1, methods,
                                    NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__realtime_scan(void) {
    init_classes();
    return PyModule_Create(&module);
}
