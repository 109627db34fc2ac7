/* REST response pages -> the string columns of their main list's items and of their scalars.
 *
 *     {"stk_cd":"005930","stk_dt_pole_chart_qry":[{"cur_prc":"70100","dt":"20250908",...},...],
 *      "return_code":0,"return_msg":"..."}
 *
 * Any key order, any whitespace. A page's list is the first of ``list_keys`` it holds (null or
 * absent: no rows). Item keys and scalars asked for are strings or null (null, or absent: a
 * null); other keys may hold any JSON value, read and dropped. Not taken (None): a page that is
 * not an object, two lists in one page, an item that is not an object, a key asked for whose
 * value is neither a string nor null or that comes twice, a return_code that is not an integer
 * of up to 18 digits, a return_msg that is not a string.
 */
#include "scan.h"

typedef struct {
    Keys lists, items, scalars;
    Col *item_cols, *scalar_cols, msg;
    Buf counts, codes; /* per page: int32 rows, int64 return_code (0 when absent) */
    const unsigned char **vals;
    Py_ssize_t *lens;
    char *nulls; /* per key: seen as null */
} Pages;

/* A string (*s set) or null (*s NULL). */
static int str_or_null(Cur *c, const unsigned char **s, Py_ssize_t *n) {
    ws(c);
    if (c->p < c->end && *c->p == 'n') {
        *s = NULL;
        return word(c, "null");
    }
    return str(c, s, n);
}

/* Values of ``keys`` from one object into vals/lens (NULL: absent or null). */
static int object(Cur *c, const Keys *keys, Pages *pg) {
    const unsigned char *k, *s;
    Py_ssize_t kn, n;
    for (Py_ssize_t i = 0; i < keys->n; i++) {
        pg->vals[i] = NULL;
        pg->nulls[i] = 0;
    }
    if (!lit(c, '{')) return NOT_EXPECTED;
    if (lit(c, '}')) return READ;
    do {
        if (!str(c, &k, &kn) || !lit(c, ':')) return NOT_EXPECTED;
        int at = keys_find(keys, k, kn);
        if (at < 0) {
            if (!skip_value(c, 32)) return NOT_EXPECTED;
            continue;
        }
        if (pg->vals[at] || pg->nulls[at] || !str_or_null(c, &s, &n)) return NOT_EXPECTED;
        pg->nulls[at] = s == NULL;
        pg->vals[at] = s;
        pg->lens[at] = n;
    } while (lit(c, ','));
    return lit(c, '}') ? READ : NOT_EXPECTED;
}

static int put_all(Col *cols, const Keys *keys, Pages *pg) {
    for (Py_ssize_t i = 0; i < keys->n; i++) {
        int r = col_put(&cols[i], pg->vals[i], pg->lens[i]);
        if (r != READ) return r;
    }
    return READ;
}

static int items(Cur *c, Pages *pg, int32_t *rows) {
    int r;
    ws(c);
    if (c->p < c->end && *c->p == 'n') return word(c, "null") ? READ : NOT_EXPECTED;
    if (!lit(c, '[')) return NOT_EXPECTED;
    if (lit(c, ']')) return READ;
    do {
        if ((r = object(c, &pg->items, pg)) != READ || (r = put_all(pg->item_cols, &pg->items, pg)) != READ)
            return r;
        if (*rows == INT32_MAX) return NOT_EXPECTED;
        (*rows)++;
    } while (lit(c, ','));
    return lit(c, ']') ? READ : NOT_EXPECTED;
}

static int page(Cur *c, Pages *pg) {
    const unsigned char *k, *s, *msg = NULL;
    Py_ssize_t kn, n, msg_len = 0;
    int listed = 0, coded = 0, said = 0, integer, r;
    int32_t rows = 0;
    int64_t code = 0;
    const unsigned char **scalar_vals = pg->vals + pg->items.n; /* scalars after the item keys */
    Py_ssize_t *scalar_lens = pg->lens + pg->items.n;
    char *scalar_nulls = pg->nulls + pg->items.n;
    for (Py_ssize_t i = 0; i < pg->scalars.n; i++) {
        scalar_vals[i] = NULL;
        scalar_nulls[i] = 0;
    }
    if (!lit(c, '{')) return NOT_EXPECTED;
    if (!lit(c, '}')) {
        do {
            if (!str(c, &k, &kn) || !lit(c, ':')) return NOT_EXPECTED;
            int at;
            if (keys_find(&pg->lists, k, kn) >= 0) {
                ws(c);
                int null = c->p < c->end && *c->p == 'n';
                if (!null && listed++) return NOT_EXPECTED; /* two lists */
                if ((r = items(c, pg, &rows)) != READ) return r;
            } else if (key_is(k, kn, "return_code")) {
                if (coded++ || !number(c, &s, &n, &integer) || !integer || n > 18) return NOT_EXPECTED;
                int negative = *s == '-';
                for (Py_ssize_t i = negative; i < n; i++) code = code * 10 + (s[i] - '0');
                if (negative) code = -code;
            } else if (key_is(k, kn, "return_msg")) {
                if (said++ || !str(c, &msg, &msg_len)) return NOT_EXPECTED;
            } else if ((at = keys_find(&pg->scalars, k, kn)) >= 0) {
                if (scalar_vals[at] || scalar_nulls[at] || !str_or_null(c, &s, &n)) return NOT_EXPECTED;
                scalar_nulls[at] = s == NULL;
                scalar_vals[at] = s;
                scalar_lens[at] = n;
            } else if (!skip_value(c, 32))
                return NOT_EXPECTED;
        } while (lit(c, ','));
        if (!lit(c, '}')) return NOT_EXPECTED;
    }
    if (!at_end(c)) return NOT_EXPECTED;
    for (Py_ssize_t i = 0; i < pg->scalars.n; i++)
        if ((r = col_put(&pg->scalar_cols[i], scalar_vals[i], scalar_lens[i])) != READ) return r;
    if ((r = col_put(&pg->msg, msg, msg_len)) != READ) return r;
    if (buf_put(&pg->counts, &rows, sizeof rows) < 0 || buf_put(&pg->codes, &code, sizeof code) < 0)
        return NO_MEMORY;
    return READ;
}

static void pages_free(Pages *pg) {
    for (Py_ssize_t i = 0; pg->item_cols && i < pg->items.n; i++) col_free(&pg->item_cols[i]);
    for (Py_ssize_t i = 0; pg->scalar_cols && i < pg->scalars.n; i++) col_free(&pg->scalar_cols[i]);
    PyMem_RawFree(pg->item_cols);
    PyMem_RawFree(pg->scalar_cols);
    col_free(&pg->msg);
    buf_free(&pg->counts);
    buf_free(&pg->codes);
    keys_free(&pg->lists);
    keys_free(&pg->items);
    keys_free(&pg->scalars);
    PyMem_RawFree(pg->vals);
    PyMem_RawFree(pg->lens);
    PyMem_RawFree(pg->nulls);
}

static PyObject *cols_list(Col *cols, Py_ssize_t n) {
    PyObject *out = PyList_New(n);
    for (Py_ssize_t i = 0; out && i < n; i++) {
        PyObject *col = col_tuple(&cols[i]);
        if (!col) Py_CLEAR(out);
        else
            PyList_SET_ITEM(out, i, col);
    }
    return out;
}

PyObject *kwh_scan_pages(PyObject *Py_UNUSED(self), PyObject *args) {
    PyObject *pages, *lists, *item_keys, *scalar_keys;
    if (!PyArg_ParseTuple(args, "O!OOO:scan_pages", &PyList_Type, &pages, &lists, &item_keys, &scalar_keys))
        return NULL;
    Py_ssize_t npages = PyList_GET_SIZE(pages);
    for (Py_ssize_t i = 0; i < npages; i++)
        if (!PyBytes_Check(PyList_GET_ITEM(pages, i))) return PyErr_Format(PyExc_TypeError, "page %zd is not bytes", i);
    Pages pg;
    memset(&pg, 0, sizeof pg);
    PyObject *out = NULL;
    if (keys_load(&pg.lists, lists, lists) < 0 || keys_load(&pg.items, item_keys, item_keys) < 0 ||
        keys_load(&pg.scalars, scalar_keys, scalar_keys) < 0)
        goto done;
    Py_ssize_t nkeys = pg.items.n + pg.scalars.n + 1;
    pg.item_cols = PyMem_RawCalloc(pg.items.n + 1, sizeof(Col));
    pg.scalar_cols = PyMem_RawCalloc(pg.scalars.n + 1, sizeof(Col));
    pg.vals = PyMem_RawCalloc(nkeys, sizeof(char *));
    pg.lens = PyMem_RawCalloc(nkeys, sizeof(Py_ssize_t));
    pg.nulls = PyMem_RawCalloc(nkeys, 1);
    int r = pg.item_cols && pg.scalar_cols && pg.vals && pg.lens && pg.nulls && col_init(&pg.msg) == READ
                ? READ
                : NO_MEMORY;
    for (Py_ssize_t i = 0; r == READ && i < pg.items.n; i++) r = col_init(&pg.item_cols[i]);
    for (Py_ssize_t i = 0; r == READ && i < pg.scalars.n; i++) r = col_init(&pg.scalar_cols[i]);
    /* the list is the caller's own and the bytes are immutable: safe to read without the GIL */
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < npages && r == READ; i++) {
        PyObject *p = PyList_GET_ITEM(pages, i);
        Cur c = {(const unsigned char *)PyBytes_AS_STRING(p),
                 (const unsigned char *)PyBytes_AS_STRING(p) + PyBytes_GET_SIZE(p)};
        r = page(&c, &pg);
    }
    Py_END_ALLOW_THREADS
    if (r == NO_MEMORY) {
        PyErr_NoMemory();
        goto done;
    }
    if (r == NOT_EXPECTED) {
        out = Py_NewRef(Py_None);
        goto done;
    }
    out = Py_BuildValue("(y#y#NNN)", pg.counts.data ? pg.counts.data : "", pg.counts.len,
                        pg.codes.data ? pg.codes.data : "", pg.codes.len, col_tuple(&pg.msg),
                        cols_list(pg.item_cols, pg.items.n), cols_list(pg.scalar_cols, pg.scalars.n));
done:
    pages_free(&pg);
    return out;
}
