/* Realtime REAL frames -> per type code, one string column per wanted FID (see scan.h).
 *
 *     {"trnm":"REAL","data":[{"type":"0B","name":"...","item":"005930",
 *                             "values":{"20":"090010","10":"+81500",...}}, ...]}
 *
 * In any key order and with any whitespace, except that an entry's "type" comes before its
 * "values" (Kiwoom writes it first; otherwise the scanner would not know which FIDs to keep).
 * Not taken (None): a frame that is not an object with trnm "REAL" and a data list, an entry
 * without type, item or values, another top-level or entry key whose value is not a string, a
 * value in "values" that is not a string, a type code not asked for, an entry lacking a wanted
 * FID or holding one twice.
 */
#include "scan.h"

typedef struct {
    PyObject *code; /* str, owned by the caller's dict */
    const char *code_s;
    Py_ssize_t code_len;
    Keys keys;
    Py_ssize_t ncols; /* 1 + wanted FIDs: column 0 is the item */
    Col *cols;
    Buf index; /* int32 frame number per entry */
    int order; /* first appearance; -1: not seen */
} Type;

typedef struct {
    Type *types;
    Py_ssize_t ntypes;
    int seen;
    const unsigned char **vals;
    Py_ssize_t *lens;
} Scan;

static Type *type_of(Scan *sc, const unsigned char *s, Py_ssize_t n) {
    for (Py_ssize_t i = 0; i < sc->ntypes; i++)
        if (sc->types[i].code_len == n && memcmp(sc->types[i].code_s, s, n) == 0) return &sc->types[i];
    return NULL;
}

static int values(Cur *c, Type *t, Scan *sc) {
    const unsigned char *f, *s;
    Py_ssize_t fn, n;
    for (Py_ssize_t i = 0; i < t->ncols; i++) sc->vals[i] = NULL;
    if (!lit(c, '{')) return NOT_EXPECTED;
    if (lit(c, '}')) return READ;
    do {
        if (!str(c, &f, &fn) || !lit(c, ':') || !str(c, &s, &n)) return NOT_EXPECTED;
        int at = keys_find(&t->keys, f, fn);
        if (at >= 0) {
            if (sc->vals[at + 1]) return NOT_EXPECTED; /* a wanted FID twice */
            sc->vals[at + 1] = s;
            sc->lens[at + 1] = n;
        }
    } while (lit(c, ','));
    return lit(c, '}') ? READ : NOT_EXPECTED;
}

static int entry(Cur *c, Scan *sc, int32_t frame) {
    Type *t = NULL;
    const unsigned char *item = NULL, *k, *s;
    Py_ssize_t item_len = 0, kn, n;
    int got_values = 0, r;
    if (!lit(c, '{') || lit(c, '}')) return NOT_EXPECTED;
    do {
        if (!str(c, &k, &kn) || !lit(c, ':')) return NOT_EXPECTED;
        if (key_is(k, kn, "values")) {
            if (t == NULL || got_values) return NOT_EXPECTED;
            got_values = 1;
            if ((r = values(c, t, sc)) != READ) return r;
            continue;
        }
        if (!str(c, &s, &n)) return NOT_EXPECTED;
        if (key_is(k, kn, "type")) {
            if (t != NULL || (t = type_of(sc, s, n)) == NULL) return NOT_EXPECTED;
        } else if (key_is(k, kn, "item")) {
            if (item) return NOT_EXPECTED;
            item = s;
            item_len = n;
        }
    } while (lit(c, ','));
    if (!lit(c, '}') || t == NULL || !got_values || item == NULL) return NOT_EXPECTED;
    sc->vals[0] = item;
    sc->lens[0] = item_len;
    for (Py_ssize_t i = 0; i < t->ncols; i++) {
        if (!sc->vals[i]) return NOT_EXPECTED; /* a wanted FID missing */
        if ((r = col_put(&t->cols[i], sc->vals[i], sc->lens[i])) != READ) return r;
    }
    if (buf_put(&t->index, &frame, sizeof frame) < 0) return NO_MEMORY;
    if (t->order < 0) t->order = sc->seen++;
    return READ;
}

static int frame(Cur *c, Scan *sc, int32_t index) {
    const unsigned char *k, *s;
    Py_ssize_t kn, n;
    int real = 0, data = 0, r;
    if (!lit(c, '{') || lit(c, '}')) return NOT_EXPECTED;
    do {
        if (!str(c, &k, &kn) || !lit(c, ':')) return NOT_EXPECTED;
        if (key_is(k, kn, "data")) {
            if (data || !lit(c, '[')) return NOT_EXPECTED;
            data = 1;
            if (lit(c, ']')) continue;
            do
                if ((r = entry(c, sc, index)) != READ) return r;
            while (lit(c, ','));
            if (!lit(c, ']')) return NOT_EXPECTED;
            continue;
        }
        if (!str(c, &s, &n)) return NOT_EXPECTED;
        if (key_is(k, kn, "trnm")) {
            if (real || !key_is(s, n, "REAL")) return NOT_EXPECTED;
            real = 1;
        }
    } while (lit(c, ','));
    return lit(c, '}') && at_end(c) && real && data ? READ : NOT_EXPECTED;
}

static void free_types(Type *types, Py_ssize_t ntypes) {
    for (Py_ssize_t i = 0; i < ntypes; i++) {
        Type *t = &types[i];
        keys_free(&t->keys);
        buf_free(&t->index);
        for (Py_ssize_t j = 0; t->cols && j < t->ncols; j++) col_free(&t->cols[j]);
        PyMem_RawFree(t->cols);
    }
    PyMem_RawFree(types);
}

static Type *load_types(PyObject *wanted, Py_ssize_t *ntypes) {
    Py_ssize_t n = PyDict_Size(wanted), pos = 0, i = 0;
    Type *types = PyMem_RawCalloc(n ? n : 1, sizeof(Type));
    if (!types) return (Type *)PyErr_NoMemory();
    *ntypes = n;
    PyObject *code, *fids;
    while (PyDict_Next(wanted, &pos, &code, &fids)) {
        Type *t = &types[i++];
        t->order = -1;
        t->code = code;
        if (!PyUnicode_Check(code)) {
            PyErr_SetString(PyExc_TypeError, "wanted maps type codes (str) to tuples of FIDs (str)");
            goto fail;
        }
        if (!(t->code_s = PyUnicode_AsUTF8AndSize(code, &t->code_len))) goto fail;
        if (keys_load(&t->keys, fids, code) < 0) goto fail;
        t->ncols = t->keys.n + 1;
        if (!(t->cols = PyMem_RawCalloc(t->ncols, sizeof(Col)))) {
            PyErr_NoMemory();
            goto fail;
        }
        for (Py_ssize_t j = 0; j < t->ncols; j++)
            if (col_init(&t->cols[j]) < 0) {
                PyErr_NoMemory();
                goto fail;
            }
    }
    return types;
fail:
    free_types(types, n);
    return NULL;
}

static PyObject *result(Scan *sc) {
    PyObject *out = PyDict_New();
    for (int order = 0; out && order < sc->seen; order++) {
        Type *t = NULL;
        for (Py_ssize_t i = 0; i < sc->ntypes; i++)
            if (sc->types[i].order == order) t = &sc->types[i];
        PyObject *cols = PyList_New(t->ncols), *one = NULL;
        for (Py_ssize_t j = 0; cols && j < t->ncols; j++) {
            PyObject *col = col_tuple(&t->cols[j]);
            if (!col) Py_CLEAR(cols);
            else
                PyList_SET_ITEM(cols, j, col);
        }
        if (cols) one = Py_BuildValue("(ny#N)", t->cols[0].rows, t->index.data ? t->index.data : "", t->index.len, cols);
        if (!one || PyDict_SetItem(out, t->code, one) < 0) Py_CLEAR(out);
        Py_XDECREF(one);
    }
    return out;
}

PyObject *kwh_scan_real(PyObject *Py_UNUSED(self), PyObject *args) {
    PyObject *frames, *wanted;
    if (!PyArg_ParseTuple(args, "O!O!:scan_real", &PyList_Type, &frames, &PyDict_Type, &wanted)) return NULL;
    Py_ssize_t nframes = PyList_GET_SIZE(frames), most = 1;
    if (nframes > INT32_MAX) return PyErr_Format(PyExc_ValueError, "%zd frames: too many for one scan", nframes);
    for (Py_ssize_t i = 0; i < nframes; i++)
        if (!PyBytes_Check(PyList_GET_ITEM(frames, i)))
            return PyErr_Format(PyExc_TypeError, "frame %zd is not bytes", i);
    Scan sc = {0};
    if (!(sc.types = load_types(wanted, &sc.ntypes))) return NULL;
    for (Py_ssize_t i = 0; i < sc.ntypes; i++)
        if (sc.types[i].ncols > most) most = sc.types[i].ncols;
    sc.vals = PyMem_RawCalloc(most, sizeof(char *));
    sc.lens = PyMem_RawCalloc(most, sizeof(Py_ssize_t));
    int r = sc.vals && sc.lens ? READ : NO_MEMORY;
    /* the list is the caller's own and the bytes are immutable: safe to read without the GIL */
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < nframes && r == READ; i++) {
        PyObject *f = PyList_GET_ITEM(frames, i);
        Cur c = {(const unsigned char *)PyBytes_AS_STRING(f),
                 (const unsigned char *)PyBytes_AS_STRING(f) + PyBytes_GET_SIZE(f)};
        r = frame(&c, &sc, (int32_t)i);
    }
    Py_END_ALLOW_THREADS
    PyObject *out = r == NO_MEMORY ? PyErr_NoMemory() : r == NOT_EXPECTED ? Py_NewRef(Py_None) : result(&sc);
    PyMem_RawFree(sc.vals);
    PyMem_RawFree(sc.lens);
    free_types(sc.types, sc.ntypes);
    return out;
}
