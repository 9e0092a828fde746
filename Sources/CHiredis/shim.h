#ifndef REVOKE_CHIREDIS_SHIM_H
#define REVOKE_CHIREDIS_SHIM_H

/* hiredis as Swift sees it. Compiles against hiredis 0.14 (Debian bookworm) and 1.x. */
#include <hiredis/hiredis.h>
#include <stdlib.h>

/* Reply types added by hiredis 1.x for RESP3; 0.14 never produces them. */
#ifndef REDIS_REPLY_DOUBLE
#define REDIS_REPLY_DOUBLE 7
#endif
#ifndef REDIS_REPLY_BOOL
#define REDIS_REPLY_BOOL 8
#endif
#ifndef REDIS_REPLY_MAP
#define REDIS_REPLY_MAP 9
#endif
#ifndef REDIS_REPLY_SET
#define REDIS_REPLY_SET 10
#endif
#ifndef REDIS_REPLY_ATTR
#define REDIS_REPLY_ATTR 11
#endif
#ifndef REDIS_REPLY_PUSH
#define REDIS_REPLY_PUSH 12
#endif
#ifndef REDIS_REPLY_BIGNUM
#define REDIS_REPLY_BIGNUM 13
#endif
#ifndef REDIS_REPLY_VERB
#define REDIS_REPLY_VERB 14
#endif

static const int chiredis_reply_string = REDIS_REPLY_STRING;
static const int chiredis_reply_array = REDIS_REPLY_ARRAY;
static const int chiredis_reply_integer = REDIS_REPLY_INTEGER;
static const int chiredis_reply_nil = REDIS_REPLY_NIL;
static const int chiredis_reply_status = REDIS_REPLY_STATUS;
static const int chiredis_reply_error = REDIS_REPLY_ERROR;
static const int chiredis_reply_double = REDIS_REPLY_DOUBLE;
static const int chiredis_reply_bool = REDIS_REPLY_BOOL;
static const int chiredis_reply_map = REDIS_REPLY_MAP;
static const int chiredis_reply_set = REDIS_REPLY_SET;
static const int chiredis_reply_push = REDIS_REPLY_PUSH;
static const int chiredis_reply_bignum = REDIS_REPLY_BIGNUM;
static const int chiredis_reply_verb = REDIS_REPLY_VERB;

/* errstr is a char[128], a tuple in Swift: hand it over as a C string. */
static inline const char *chiredis_reader_errstr(const redisReader *reader) {
    return reader->errstr;
}

static inline int chiredis_reader_err(const redisReader *reader) {
    return reader->err;
}

/* Lets the reader keep its buffer whatever its size: the connection feeds it
   continuously, so freeing and reallocating it after every read buys nothing. */
static inline void chiredis_reader_keep_buffer(redisReader *reader) {
    reader->maxbuf = 0;
}

/* The most elements one array reply may announce. hiredis allocates the array as soon as it
   reads `*<count>`, before any element arrives, so `*999999999` from a hostile or broken
   server would take gigabytes at once; past this limit the reply is refused as unreadable.
   The largest Revoke asks for are pages of a few thousand. */
#define CHIREDIS_MAXIMUM_ELEMENTS (1 << 20)

#if HIREDIS_MAJOR >= 1
static inline void chiredis_reader_limit_elements(redisReader *reader) {
    reader->maxelements = CHIREDIS_MAXIMUM_ELEMENTS;
}
#else
/* hiredis 0.14 has no such limit: the reader's own functions are wrapped, the originals kept
   in the reader's privdata (handed to every task), and createArray refuses a count past the
   limit by returning NULL, which hiredis reports as an error. */
static inline const redisReplyObjectFunctions *chiredis_original(const redisReadTask *task) {
    return (const redisReplyObjectFunctions *)task->privdata;
}
static inline void *chiredis_create_string(const redisReadTask *task, char *text, size_t length) {
    return chiredis_original(task)->createString(task, text, length);
}
static inline void *chiredis_create_array(const redisReadTask *task, int elements) {
    if (elements < 0 || elements > CHIREDIS_MAXIMUM_ELEMENTS) return NULL;
    return chiredis_original(task)->createArray(task, elements);
}
static inline void *chiredis_create_integer(const redisReadTask *task, long long value) {
    return chiredis_original(task)->createInteger(task, value);
}
static inline void *chiredis_create_nil(const redisReadTask *task) {
    return chiredis_original(task)->createNil(task);
}
static inline void chiredis_free_object(void *object) {
    freeReplyObject(object);
}
static redisReplyObjectFunctions chiredis_limited_functions = {
    chiredis_create_string, chiredis_create_array, chiredis_create_integer, chiredis_create_nil, chiredis_free_object,
};
static inline void chiredis_reader_limit_elements(redisReader *reader) {
    reader->privdata = reader->fn;
    reader->fn = &chiredis_limited_functions;
}
#endif

/* The value of a RESP3 double (hiredis 1.x); 0.14 has no such field and no such reply. */
static inline double chiredis_reply_dval(const redisReply *reply) {
#if HIREDIS_MAJOR >= 1
    return reply->dval;
#else
    return reply->str ? strtod(reply->str, NULL) : 0.0;
#endif
}

/* hiredis' own command formatter, for the tests that compare our encoder with it. */
static inline void chiredis_free(void *pointer) {
    free(pointer);
}

#endif
