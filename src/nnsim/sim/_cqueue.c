/*
 * The event queue and run loop in C: nnsim's hot path.
 *
 * A binary heap of plain structs ordered by (time, priority, source, seq),
 * and a loop that pops the next entry, sets `now` and calls its target with
 * its payload. Python's heapq over tuples spends most of its time comparing
 * tuples; here a comparison is four integer compares. queue.py holds the
 * same queue in pure Python (used when this module is not compiled) and the
 * tests run both against each other, error paths included: every check here
 * has its twin there with the same exception type and message.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    long long time;
    long long priority;
    long long source;
    long long seq;
    PyObject *target;
    PyObject *payload;
} Entry;

typedef struct {
    PyObject_HEAD
    Entry *heap;
    Py_ssize_t size;
    Py_ssize_t capacity;
    long long now;
    long long delivered;
    /* The key of the entry being delivered (now is its time): `key` for tools. */
    long long cur_priority;
    long long cur_source;
    long long cur_seq;
} EventQueue;

static inline int
entry_less(const Entry *a, const Entry *b)
{
    if (a->time != b->time) return a->time < b->time;
    if (a->priority != b->priority) return a->priority < b->priority;
    if (a->source != b->source) return a->source < b->source;
    return a->seq < b->seq;
}

static inline int
same_key(const Entry *a, const Entry *b)
{
    return a->seq == b->seq && a->source == b->source && a->time == b->time &&
           a->priority == b->priority;
}

/* Two entries with the first one's key: its twin, if any, is a child of the root. */
static inline int
top_is_duplicate(const EventQueue *self)
{
    const Entry *h = self->heap;
    return (self->size > 1 && same_key(&h[0], &h[1])) ||
           (self->size > 2 && same_key(&h[0], &h[2]));
}

static void
raise_duplicate(const Entry *e)
{
    PyErr_Format(PyExc_ValueError,
                 "two events share the key (time %lld ps, priority %lld, source %lld, seq %lld); "
                 "each event's (time, priority, source, seq) must be unique",
                 e->time, e->priority, e->source, e->seq);
}

/* An integer argument as a 64-bit value; queue.py's _int64 raises the same errors. */
static int
as_int64(PyObject *obj, const char *what, long long *out)
{
    int overflow = 0;
    long long value;
    if (PyLong_CheckExact(obj)) {
        value = PyLong_AsLongLongAndOverflow(obj, &overflow);
        if (overflow) {
            PyErr_Format(PyExc_OverflowError, "%s %S does not fit in a 64-bit integer", what, obj);
            return -1;
        }
    } else {
        PyObject *index = PyNumber_Index(obj);
        if (!index) return -1;
        value = PyLong_AsLongLongAndOverflow(index, &overflow);
        if (overflow) {
            PyErr_Format(PyExc_OverflowError, "%s %S does not fit in a 64-bit integer", what,
                         index);
            Py_DECREF(index);
            return -1;
        }
        Py_DECREF(index);
    }
    if (value == -1 && PyErr_Occurred()) return -1;
    *out = value;
    return 0;
}

static void
sift_up(Entry *heap, Py_ssize_t pos)
{
    Entry item = heap[pos];
    while (pos > 0) {
        Py_ssize_t parent = (pos - 1) >> 1;
        if (!entry_less(&item, &heap[parent])) break;
        heap[pos] = heap[parent];
        pos = parent;
    }
    heap[pos] = item;
}

static void
sift_down(Entry *heap, Py_ssize_t size, Py_ssize_t pos)
{
    Entry item = heap[pos];
    for (;;) {
        Py_ssize_t child = 2 * pos + 1;
        if (child >= size) break;
        if (child + 1 < size && entry_less(&heap[child + 1], &heap[child])) child++;
        if (!entry_less(&heap[child], &item)) break;
        heap[pos] = heap[child];
        pos = child;
    }
    heap[pos] = item;
}

static int
queue_insert(EventQueue *self, long long time, long long priority, long long source,
             long long seq, PyObject *target, PyObject *payload)
{
    if (self->size == self->capacity) {
        Py_ssize_t capacity = self->capacity ? self->capacity * 2 : 64;
        Entry *grown = PyMem_Realloc(self->heap, capacity * sizeof(Entry));
        if (!grown) {
            PyErr_NoMemory();
            return -1;
        }
        self->heap = grown;
        self->capacity = capacity;
    }
    Entry *slot = &self->heap[self->size];
    slot->time = time;
    slot->priority = priority;
    slot->source = source;
    slot->seq = seq;
    Py_INCREF(target);
    slot->target = target;
    Py_INCREF(payload);
    slot->payload = payload;
    sift_up(self->heap, self->size);
    self->size++;
    return 0;
}

/* Remove the first entry; the caller owns its references. */
static Entry
queue_take(EventQueue *self)
{
    Entry first = self->heap[0];
    self->size--;
    if (self->size > 0) {
        self->heap[0] = self->heap[self->size];
        sift_down(self->heap, self->size, 0);
    }
    return first;
}

static const char *const PUSH_FIELDS[4] = {"delay", "priority", "source", "seq"};
static const char *const PUSH_AT_FIELDS[4] = {"time", "priority", "source", "seq"};

static int
parse_entry(const char *method, const char *const fields[4], PyObject *const *args,
            Py_ssize_t nargs, long long values[4])
{
    if (nargs != 6) {
        PyErr_Format(PyExc_TypeError,
                     "%s() takes 6 arguments (%s, priority, source, seq, target, payload), %zd given",
                     method, fields[0], nargs);
        return -1;
    }
    for (int i = 0; i < 4; i++) {
        if (as_int64(args[i], fields[i], &values[i]) < 0) return -1;
    }
    return 0;
}

static PyObject *
EventQueue_push(EventQueue *self, PyObject *const *args, Py_ssize_t nargs)
{
    long long v[4];
    if (parse_entry("push", PUSH_FIELDS, args, nargs, v) < 0) return NULL;
    if (v[0] < 0) {
        PyErr_Format(PyExc_ValueError, "cannot schedule an event with a negative delay (%lld ps)",
                     v[0]);
        return NULL;
    }
    if (v[0] > LLONG_MAX - self->now) {
        PyErr_Format(PyExc_OverflowError,
                     "cannot schedule an event %lld ps after %lld ps: the time does not fit in "
                     "a 64-bit integer",
                     v[0], self->now);
        return NULL;
    }
    if (queue_insert(self, self->now + v[0], v[1], v[2], v[3], args[4], args[5]) < 0) return NULL;
    Py_RETURN_NONE;
}

static PyObject *
EventQueue_push_at(EventQueue *self, PyObject *const *args, Py_ssize_t nargs)
{
    long long v[4];
    if (parse_entry("push_at", PUSH_AT_FIELDS, args, nargs, v) < 0) return NULL;
    if (v[0] < self->now) {
        PyErr_Format(PyExc_ValueError, "cannot schedule an event at %lld ps, before now (%lld ps)",
                     v[0], self->now);
        return NULL;
    }
    if (queue_insert(self, v[0], v[1], v[2], v[3], args[4], args[5]) < 0) return NULL;
    Py_RETURN_NONE;
}

static PyObject *
EventQueue_pop(EventQueue *self, PyObject *Py_UNUSED(ignored))
{
    if (self->size == 0) {
        PyErr_SetString(PyExc_IndexError, "pop from an empty event queue");
        return NULL;
    }
    if (top_is_duplicate(self)) {
        raise_duplicate(&self->heap[0]);
        return NULL;
    }
    Entry first = queue_take(self);
    self->now = first.time;
    self->cur_priority = first.priority;
    self->cur_source = first.source;
    self->cur_seq = first.seq;
    self->delivered++;
    PyObject *result = Py_BuildValue("(LLLLNN)", first.time, first.priority, first.source,
                                     first.seq, first.target, first.payload);
    return result;
}

/* Deliver entries while the first one's (time, priority) is below (end_time, end_priority). */
static PyObject *
run_below(EventQueue *self, long long end_time, long long end_priority)
{
    while (self->size > 0) {
        const Entry *top = &self->heap[0];
        if (top->time > end_time || (top->time == end_time && top->priority >= end_priority))
            break;
        if (top_is_duplicate(self)) {
            raise_duplicate(&self->heap[0]);
            return NULL;
        }
        Entry first = queue_take(self);
        self->now = first.time;
        self->cur_priority = first.priority;
        self->cur_source = first.source;
        self->cur_seq = first.seq;
        self->delivered++;
        PyObject *result = PyObject_CallOneArg(first.target, first.payload);
        Py_DECREF(first.target);
        Py_DECREF(first.payload);
        if (result == NULL) return NULL;
        Py_DECREF(result);
    }
    Py_RETURN_NONE;
}

static PyObject *
EventQueue_run(EventQueue *self, PyObject *Py_UNUSED(ignored))
{
    return run_below(self, LLONG_MAX, LLONG_MAX);
}

static PyObject *
EventQueue_run_before(EventQueue *self, PyObject *const *args, Py_ssize_t nargs)
{
    long long end_time, end_priority;
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "run_before() takes 2 arguments (time, priority), %zd given",
                     nargs);
        return NULL;
    }
    if (as_int64(args[0], "time", &end_time) < 0 || as_int64(args[1], "priority", &end_priority) < 0)
        return NULL;
    return run_below(self, end_time, end_priority);
}

static PyObject *
EventQueue_first_key(EventQueue *self, PyObject *Py_UNUSED(ignored))
{
    if (self->size == 0) Py_RETURN_NONE;
    const Entry *e = &self->heap[0];
    return Py_BuildValue("(LLLL)", e->time, e->priority, e->source, e->seq);
}

static int
entry_compare(const void *a, const void *b)
{
    if (entry_less(a, b)) return -1;
    return entry_less(b, a) ? 1 : 0;
}

static PyObject *
EventQueue_entries(EventQueue *self, PyObject *Py_UNUSED(ignored))
{
    /* A sorted copy: the heap's layout is this implementation's own business. */
    Entry *sorted = PyMem_Malloc((self->size ? self->size : 1) * sizeof(Entry));
    if (!sorted) return PyErr_NoMemory();
    memcpy(sorted, self->heap, self->size * sizeof(Entry));
    qsort(sorted, self->size, sizeof(Entry), entry_compare);
    PyObject *list = PyList_New(self->size);
    if (!list) {
        PyMem_Free(sorted);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < self->size; i++) {
        Entry *e = &sorted[i];
        PyObject *item = Py_BuildValue("(LLLLOO)", e->time, e->priority, e->source, e->seq,
                                       e->target, e->payload);
        if (!item) {
            PyMem_Free(sorted);
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, i, item);
    }
    PyMem_Free(sorted);
    return list;
}

static PyObject *
EventQueue_remove_target(EventQueue *self, PyObject *target)
{
    Py_ssize_t kept = 0;
    Py_ssize_t removed = 0;
    for (Py_ssize_t i = 0; i < self->size; i++) {
        Entry e = self->heap[i];
        if (e.target == target) {
            Py_DECREF(e.target);
            Py_DECREF(e.payload);
            removed++;
        } else {
            self->heap[kept++] = e;
        }
    }
    self->size = kept;
    for (Py_ssize_t i = kept / 2 - 1; i >= 0; i--) sift_down(self->heap, self->size, i);
    return PyLong_FromSsize_t(removed);
}

static PyObject *
EventQueue_replace_target(EventQueue *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "replace_target() takes 2 arguments (old, new), %zd given",
                     nargs);
        return NULL;
    }
    Py_ssize_t replaced = 0;
    for (Py_ssize_t i = 0; i < self->size; i++) {
        if (self->heap[i].target == args[0]) {
            Py_INCREF(args[1]);
            Py_SETREF(self->heap[i].target, args[1]);
            replaced++;
        }
    }
    return PyLong_FromSsize_t(replaced);
}

static PyObject *
EventQueue_clear(EventQueue *self, PyObject *Py_UNUSED(ignored))
{
    for (Py_ssize_t i = 0; i < self->size; i++) {
        Py_DECREF(self->heap[i].target);
        Py_DECREF(self->heap[i].payload);
    }
    self->size = 0;
    Py_RETURN_NONE;
}

static Py_ssize_t
EventQueue_len(EventQueue *self)
{
    return self->size;
}

static PyObject *
EventQueue_get_now(EventQueue *self, void *Py_UNUSED(closure))
{
    return PyLong_FromLongLong(self->now);
}

static int
EventQueue_set_now(EventQueue *self, PyObject *value, void *Py_UNUSED(closure))
{
    if (value == NULL) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete now");
        return -1;
    }
    long long now;
    if (as_int64(value, "now", &now) < 0) return -1;
    if (now < 0) {
        PyErr_Format(PyExc_ValueError, "now cannot be negative (%lld ps)", now);
        return -1;
    }
    self->now = now;
    return 0;
}

static PyObject *
EventQueue_get_delivered(EventQueue *self, void *Py_UNUSED(closure))
{
    return PyLong_FromLongLong(self->delivered);
}

static int
EventQueue_set_delivered(EventQueue *self, PyObject *value, void *Py_UNUSED(closure))
{
    if (value == NULL) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete delivered");
        return -1;
    }
    long long delivered;
    if (as_int64(value, "delivered", &delivered) < 0) return -1;
    self->delivered = delivered;
    return 0;
}

static PyObject *
EventQueue_get_key(EventQueue *self, void *Py_UNUSED(closure))
{
    return Py_BuildValue("(LLLL)", self->now, self->cur_priority, self->cur_source, self->cur_seq);
}

static int
EventQueue_traverse(EventQueue *self, visitproc visit, void *arg)
{
    for (Py_ssize_t i = 0; i < self->size; i++) {
        Py_VISIT(self->heap[i].target);
        Py_VISIT(self->heap[i].payload);
    }
    return 0;
}

static int
EventQueue_tp_clear(EventQueue *self)
{
    Py_ssize_t size = self->size;
    self->size = 0;
    for (Py_ssize_t i = 0; i < size; i++) {
        Py_CLEAR(self->heap[i].target);
        Py_CLEAR(self->heap[i].payload);
    }
    return 0;
}

static void
EventQueue_dealloc(EventQueue *self)
{
    PyObject_GC_UnTrack(self);
    EventQueue_tp_clear(self);
    PyMem_Free(self->heap);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef EventQueue_methods[] = {
    {"push", (PyCFunction)(void (*)(void))EventQueue_push, METH_FASTCALL,
     "push(delay, priority, source, seq, target, payload): at now + delay"},
    {"push_at", (PyCFunction)(void (*)(void))EventQueue_push_at, METH_FASTCALL,
     "push_at(time, priority, source, seq, target, payload): at an absolute time"},
    {"pop", (PyCFunction)EventQueue_pop, METH_NOARGS,
     "Remove the first entry, set now to its time and return it as a 6-tuple.\n"
     "IndexError when empty; ValueError (nothing removed) when another entry has its key."},
    {"run", (PyCFunction)EventQueue_run, METH_NOARGS,
     "Call target(payload) for each entry in order until the queue is empty or a call raises\n"
     "(or, as in pop, the next entry's key is not unique)."},
    {"run_before", (PyCFunction)(void (*)(void))EventQueue_run_before, METH_FASTCALL,
     "run_before(time, priority): as run, but only while the next entry's (time, priority)\n"
     "is below the given pair; the rest stays queued."},
    {"first_key", (PyCFunction)EventQueue_first_key, METH_NOARGS,
     "The key (time, priority, source, seq) of the next entry, or None when empty."},
    {"entries", (PyCFunction)EventQueue_entries, METH_NOARGS,
     "The pending entries as 6-tuples, in delivery order."},
    {"remove_target", (PyCFunction)EventQueue_remove_target, METH_O,
     "Remove every entry whose target is the given object; return how many."},
    {"replace_target", (PyCFunction)(void (*)(void))EventQueue_replace_target, METH_FASTCALL,
     "replace_target(old, new): entries for `old` go to `new`; return how many."},
    {"clear", (PyCFunction)EventQueue_clear, METH_NOARGS, "Remove every entry."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef EventQueue_getset[] = {
    {"now", (getter)EventQueue_get_now, (setter)EventQueue_set_now,
     "time of the entry being delivered (ps)", NULL},
    {"delivered", (getter)EventQueue_get_delivered, (setter)EventQueue_set_delivered,
     "entries delivered so far", NULL},
    {"key", (getter)EventQueue_get_key, NULL,
     "key (time, priority, source, seq) of the entry being delivered (the last one taken)", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PySequenceMethods EventQueue_as_sequence = {
    .sq_length = (lenfunc)EventQueue_len,
};

static PyTypeObject EventQueueType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "nnsim.sim._cqueue.EventQueue",
    .tp_doc = "Event queue ordered by (time, priority, source, seq), with its run loop.",
    .tp_basicsize = sizeof(EventQueue),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_dealloc = (destructor)EventQueue_dealloc,
    .tp_traverse = (traverseproc)EventQueue_traverse,
    .tp_clear = (inquiry)EventQueue_tp_clear,
    .tp_methods = EventQueue_methods,
    .tp_getset = EventQueue_getset,
    .tp_as_sequence = &EventQueue_as_sequence,
};


/* ---------------------------------------------------------------------------
 * Sender: a link end's `send(event, delay=0)`, numbering its events and
 * queueing them for the peer's handler at now + latency + delay.
 */
typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    EventQueue *queue;
    PyObject *target;
    long long source;
    long long priority;
    long long latency;
    long long sent;
} Sender;

static PyObject *
Sender_vectorcall(Sender *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    long long delay = 0;
    PyObject *delay_obj = NULL;
    if (nargs == 2) {
        delay_obj = args[1];
    } else if (nargs != 1) {
        PyErr_SetString(PyExc_TypeError, "send(event, delay=0) takes an event and an optional delay");
        return NULL;
    }
    if (kwnames != NULL) {
        Py_ssize_t nkw = PyTuple_GET_SIZE(kwnames);
        for (Py_ssize_t i = 0; i < nkw; i++) {
            PyObject *name = PyTuple_GET_ITEM(kwnames, i);
            if (delay_obj != NULL || PyUnicode_CompareWithASCIIString(name, "delay") != 0) {
                PyErr_Format(PyExc_TypeError, "send() got an unexpected keyword argument '%U'", name);
                return NULL;
            }
            delay_obj = args[nargs + i];
        }
    }
    if (delay_obj != NULL) {
        if (as_int64(delay_obj, "delay", &delay) < 0) return NULL;
        if (delay < 0) {
            PyErr_Format(PyExc_ValueError, "cannot send an event with a negative delay (%lld ps)", delay);
            return NULL;
        }
    }
    long long room = LLONG_MAX - self->queue->now;
    if (self->latency > room || delay > room - self->latency) {
        PyErr_Format(PyExc_OverflowError,
                     "cannot send an event %lld + %lld ps after %lld ps: the time does not fit "
                     "in a 64-bit integer",
                     self->latency, delay, self->queue->now);
        return NULL;
    }
    self->sent++;
    if (queue_insert(self->queue, self->queue->now + self->latency + delay, self->priority,
                     self->source, self->sent, self->target, args[0]) < 0) {
        self->sent--;
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
Sender_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"queue", "source", "priority", "latency", "target", NULL};
    PyObject *queue, *target, *source_obj, *priority_obj, *latency_obj;
    long long source, priority, latency;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOOOO:Sender", keywords, &queue, &source_obj,
                                     &priority_obj, &latency_obj, &target))
        return NULL;
    if (!PyObject_TypeCheck(queue, &EventQueueType)) {
        const char *type_name = Py_TYPE(queue)->tp_name, *dot = strrchr(type_name, '.');
        PyErr_Format(PyExc_TypeError, "a Sender's queue must be an EventQueue, not %s",
                     dot ? dot + 1 : type_name);
        return NULL;
    }
    if (as_int64(source_obj, "source", &source) < 0 ||
        as_int64(priority_obj, "priority", &priority) < 0 ||
        as_int64(latency_obj, "latency", &latency) < 0)
        return NULL;
    if (latency < 0) {
        PyErr_Format(PyExc_ValueError, "latency cannot be negative (%lld ps)", latency);
        return NULL;
    }
    Sender *self = (Sender *)type->tp_alloc(type, 0);
    if (!self) return NULL;
    self->vectorcall = (vectorcallfunc)Sender_vectorcall;
    Py_INCREF(queue);
    self->queue = (EventQueue *)queue;
    Py_INCREF(target);
    self->target = target;
    self->source = source;
    self->priority = priority;
    self->latency = latency;
    self->sent = 0;
    return (PyObject *)self;
}

static int
Sender_traverse(Sender *self, visitproc visit, void *arg)
{
    Py_VISIT(self->queue);
    Py_VISIT(self->target);
    return 0;
}

static int
Sender_clear(Sender *self)
{
    Py_CLEAR(self->queue);
    Py_CLEAR(self->target);
    return 0;
}

static void
Sender_dealloc(Sender *self)
{
    PyObject_GC_UnTrack(self);
    Sender_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
Sender_get_target(Sender *self, void *Py_UNUSED(closure))
{
    Py_INCREF(self->target);
    return self->target;
}

static int
Sender_set_target(Sender *self, PyObject *value, void *Py_UNUSED(closure))
{
    if (value == NULL) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete target");
        return -1;
    }
    Py_INCREF(value);
    Py_SETREF(self->target, value);
    return 0;
}

static PyObject *
Sender_get_queue(Sender *self, void *Py_UNUSED(closure))
{
    Py_INCREF(self->queue);
    return (PyObject *)self->queue;
}

#define LONG_FIELD(name, nonnegative)                                                            \
    static PyObject *Sender_get_##name(Sender *self, void *Py_UNUSED(c))              \
    {                                                                                 \
        return PyLong_FromLongLong(self->name);                                       \
    }                                                                                 \
    static int Sender_set_##name(Sender *self, PyObject *value, void *Py_UNUSED(c))   \
    {                                                                                 \
        if (value == NULL) {                                                          \
            PyErr_SetString(PyExc_AttributeError, "cannot delete " #name);            \
            return -1;                                                                \
        }                                                                             \
        long long v;                                                                  \
        if (as_int64(value, #name, &v) < 0) return -1;                                \
        if (nonnegative && v < 0) {                                                   \
            PyErr_Format(PyExc_ValueError, #name " cannot be negative (%lld ps)", v);   \
            return -1;                                                                \
        }                                                                             \
        self->name = v;                                                               \
        return 0;                                                                     \
    }

LONG_FIELD(source, 0)
LONG_FIELD(priority, 0)
LONG_FIELD(latency, 1)
LONG_FIELD(sent, 0)

static PyGetSetDef Sender_getset[] = {
    {"queue", (getter)Sender_get_queue, NULL, "the event queue", NULL},
    {"target", (getter)Sender_get_target, (setter)Sender_set_target, "handler called on delivery", NULL},
    {"source", (getter)Sender_get_source, (setter)Sender_set_source, "stable id of the sending end", NULL},
    {"priority", (getter)Sender_get_priority, (setter)Sender_set_priority, "queue priority", NULL},
    {"latency", (getter)Sender_get_latency, (setter)Sender_set_latency, "latency in ps", NULL},
    {"sent", (getter)Sender_get_sent, (setter)Sender_set_sent, "events sent (the sequence number)", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject SenderType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "nnsim.sim._cqueue.Sender",
    .tp_doc = "Sender(queue, source, priority, latency, target): send(event, delay=0).",
    .tp_basicsize = sizeof(Sender),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_vectorcall_offset = offsetof(Sender, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_new = Sender_new,
    .tp_dealloc = (destructor)Sender_dealloc,
    .tp_traverse = (traverseproc)Sender_traverse,
    .tp_clear = (inquiry)Sender_clear,
    .tp_getset = Sender_getset,
};

static struct PyModuleDef cqueue_module = {
    PyModuleDef_HEAD_INIT, "_cqueue", "nnsim's event queue in C.", -1, NULL,
};

PyMODINIT_FUNC
PyInit__cqueue(void)
{
    if (PyType_Ready(&EventQueueType) < 0) return NULL;
    if (PyType_Ready(&SenderType) < 0) return NULL;
    PyObject *module = PyModule_Create(&cqueue_module);
    if (!module) return NULL;
    Py_INCREF(&EventQueueType);
    if (PyModule_AddObject(module, "EventQueue", (PyObject *)&EventQueueType) < 0) {
        Py_DECREF(&EventQueueType);
        Py_DECREF(module);
        return NULL;
    }
    Py_INCREF(&SenderType);
    if (PyModule_AddObject(module, "Sender", (PyObject *)&SenderType) < 0) {
        Py_DECREF(&SenderType);
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
