/* schemas._scan: one-pass JSON scanners into Arrow string columns (scan.h, real.c, pages.c). */
#include "scan.h"

unsigned char kwh_scan_class[256];

PyObject *kwh_scan_real(PyObject *self, PyObject *args);
PyObject *kwh_scan_pages(PyObject *self, PyObject *args);

static PyMethodDef methods[] = {
    {"scan_real", kwh_scan_real, METH_VARARGS,
     "scan_real(frames: list[bytes], wanted: dict[str, tuple[str, ...]]) -> dict | None\n\n"
     "REAL frames: per type code (in order of first appearance), (entries, frame number per entry as\n"
     "int32 bytes, [column per ('item', *wanted[code])]); None if a frame is not one it reads."},
    {"scan_pages", kwh_scan_pages, METH_VARARGS,
     "scan_pages(pages: list[bytes], lists, items, scalars: tuple[str, ...]) -> tuple | None\n\n"
     "REST pages: (rows per page int32 bytes, return_code per page int64 bytes, return_msg column,\n"
     "[column per item key], [column per scalar key]); None if a page is not one it reads.\n"
     "A column is (int32 offsets bytes, data bytes, validity bitmap bytes or None, nulls)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_scan", "One-pass JSON scanners into Arrow string columns.", -1, methods,
    NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__scan(void) {
    for (int ch = 0; ch < 256; ch++)
        kwh_scan_class[ch] = ch < 0x20 || ch == '\\' ? 2 : ch == '"' ? 1 : ch >= 0x80 ? 3 : 0;
    return PyModule_Create(&module);
}
