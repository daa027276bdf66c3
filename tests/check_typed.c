/*
 * check_typed.c - typed channels (CSP_CHAN_TYPE) and the range helpers
 * (CSP_RANGE, CSP_RANGE_OF).  tests/typed_fail.c and
 * tests/check_typed_fail.sh prove that a wrong element type does not
 * compile; this suite proves that the right ones work like the untyped API.
 */
#include "testutil.h"

#include <stdio.h>
#include <string.h>

CSP_CHAN_TYPE(int_chan, int);

typedef struct point {
    double x, y;
    char tag[24];
} point;
CSP_CHAN_TYPE(point_chan, point);

typedef const char *str;
CSP_CHAN_TYPE(str_chan, str);

CSP_CHAN_TYPE(time_chan, int64_t);

/* The typed wrapper is the channel itself: no extra object. */
START_TEST(test_make_is_untyped_chan)
{
    int_chan *c = int_chan_make(3);
    ck_assert_ptr_nonnull(c);
    csp_chan *u = int_chan_chan(c);
    ck_assert_ptr_eq((void *)u, (void *)c);
    ck_assert_uint_eq(csp_chan_elem_size(u), sizeof(int));
    ck_assert_uint_eq(int_chan_cap(c), 3);
    ck_assert_uint_eq(int_chan_len(c), 0);
    ck_assert_ptr_eq(int_chan_from(u), c);
    ck_assert_ptr_null(point_chan_from(u));
    ck_assert_ptr_null(int_chan_from(NULL));
    ck_assert_ptr_eq(int_chan_retain(c), c);
    int_chan_release(c);
    int_chan_release(c);
    int_chan_release(NULL);
}
END_TEST

/* Buffered: FIFO, try and until forms, close and drain. */
START_TEST(test_buffered_ops)
{
    int_chan *c = int_chan_make(2);
    ck_assert_int_eq(int_chan_send(c, 1), 0);
    ck_assert_int_eq(int_chan_try_send(c, 2), 0);
    ck_assert_int_eq(int_chan_len(c), 2);
    ck_assert_int_eq(int_chan_try_send(c, 3), EAGAIN);
    ck_assert_int_eq(int_chan_send_until(c, 3, csp_deadline(1000000)), ETIMEDOUT);
    ck_assert_int_eq(int_chan_send_until(c, 3, CSP_NOWAIT), EAGAIN);
    int v = 0;
    ck_assert_int_eq(int_chan_recv(c, &v), 0);
    ck_assert_int_eq(v, 1);
    ck_assert_int_eq(int_chan_recv_until(c, &v, CSP_FOREVER), 0);
    ck_assert_int_eq(v, 2);
    ck_assert_int_eq(int_chan_try_recv(c, &v), EAGAIN);
    ck_assert_int_eq(int_chan_recv_until(c, &v, csp_deadline(1000000)), ETIMEDOUT);
    ck_assert_int_eq(int_chan_send(c, 7), 0);
    ck_assert_int_eq(int_chan_close(c), 0);
    ck_assert_int_eq(int_chan_close(c), EPIPE);
    ck_assert_int_eq(int_chan_send(c, 8), EPIPE);
    ck_assert_int_eq(int_chan_recv(c, &v), 0);
    ck_assert_int_eq(v, 7);
    v = 99;
    ck_assert_int_eq(int_chan_recv(c, &v), EPIPE);
    ck_assert_int_eq(v, 0);                     /* zero-filled, as untyped */
    int_chan_release(c);
}
END_TEST

/* NULL channels behave as in the untyped API. */
START_TEST(test_null_channel)
{
    int v;
    ck_assert_int_eq(int_chan_send(NULL, 1), EINVAL);
    ck_assert_int_eq(int_chan_recv(NULL, &v), EINVAL);
    ck_assert_int_eq(int_chan_close(NULL), EINVAL);
}
END_TEST

/* Structs travel by value, whole. */
static void point_producer(void *arg)
{
    point_chan *c = arg;
    for (int i = 0; i < 100; i++) {
        point p = { i, -i, "" };
        snprintf(p.tag, sizeof p.tag, "p%d", i);
        if (point_chan_send(c, p) != 0)
            break;
    }
    point_chan_close(c);
    point_chan_release(c);
}

static void points_main(void *arg)
{
    (void)arg;
    point_chan *c = point_chan_make(0);          /* unbuffered */
    ck_assert_int_eq(csp_go(point_producer, point_chan_retain(c)), 0);
    int n = 0;
    point p;
    CSP_RANGE_OF(point_chan, c, p) {
        char want[24];
        snprintf(want, sizeof want, "p%d", n);
        ck_assert(p.x == n && p.y == -n);
        ck_assert_str_eq(p.tag, want);
        n++;
    }
    ck_assert_int_eq(n, 100);
    point_chan_release(c);
}

START_TEST(test_struct_values)
{
    RUN_MAIN(points_main, NULL);
}
END_TEST

/* Pointer element types: the pointer is the value. */
START_TEST(test_pointer_values)
{
    static const char hello[] = "hello";
    str_chan *c = str_chan_make(1);
    ck_assert_int_eq(str_chan_send(c, hello), 0);
    str s = NULL;
    ck_assert_int_eq(str_chan_recv(c, &s), 0);
    ck_assert_ptr_eq(s, hello);
    str_chan_release(c);
}
END_TEST

/* The select helpers build ordinary cases. */
START_TEST(test_select_cases)
{
    int_chan *a = int_chan_make(1);
    point_chan *b = point_chan_make(1);
    int out = 5, in = 0;
    point pin;
    memset(&pin, 0, sizeof pin);
    csp_case cs[2] = { int_chan_case_send(a, &out), point_chan_case_recv(b, &pin) };
    ck_assert_ptr_eq((void *)cs[0].chan, (void *)a);
    ck_assert_int_eq(cs[0].op, CSP_OP_SEND);
    ck_assert_int_eq(cs[1].op, CSP_OP_RECV);
    ck_assert_int_eq(csp_select(cs, 2, CSP_NOWAIT), 0);   /* only the send is ready */
    ck_assert_int_eq(int_chan_recv(a, &in), 0);
    ck_assert_int_eq(in, 5);

    point p = { 1.5, 2.5, "q" };
    ck_assert_int_eq(point_chan_send(b, p), 0);
    ck_assert_int_eq(int_chan_send(a, 9), 0);             /* a full: send not ready */
    ck_assert_int_eq(csp_select(cs, 2, CSP_NOWAIT), 1);
    ck_assert(pin.x == 1.5 && pin.y == 2.5);
    ck_assert_str_eq(pin.tag, "q");

    csp_case r = int_chan_case_recv(a, &in);
    ck_assert_int_eq(csp_select(&r, 1, CSP_FOREVER), 0);
    ck_assert_int_eq(in, 9);
    int_chan_release(a);
    point_chan_release(b);
}
END_TEST

/* Wrapping a library-made channel: csp_after's int64_t channel. */
START_TEST(test_from_timer)
{
    csp_chan *t = csp_after(1000000);
    ck_assert_ptr_nonnull(t);
    if (sizeof(int) != sizeof(int64_t))
        ck_assert_ptr_null(int_chan_from(t));    /* element sizes differ */
    time_chan *tc = time_chan_from(t);
    ck_assert_ptr_nonnull(tc);
    int64_t when = 0;
    ck_assert_int_eq(time_chan_recv(tc, &when), 0);
    ck_assert(when > 0);
    time_chan_release(tc);
}
END_TEST

/* CSP_RANGE over an untyped channel, and break leaves the loop. */
static void counter(void *arg)
{
    csp_chan *c = arg;
    for (int i = 1; i <= 10; i++)
        if (csp_send(c, &i) != 0)
            break;
    csp_close(c);
    csp_chan_release(c);
}

static void range_main(void *arg)
{
    (void)arg;
    csp_chan *c = csp_chan_make(sizeof(int), 0);
    ck_assert_int_eq(csp_go(counter, csp_chan_retain(c)), 0);
    int v, sum = 0;
    CSP_RANGE(c, v)
        sum += v;
    ck_assert_int_eq(sum, 55);

    int_chan *d = int_chan_make(4);
    ck_assert_int_eq(csp_go(counter, csp_chan_retain(int_chan_chan(d))), 0);
    int seen = 0;
    CSP_RANGE_OF(int_chan, d, v) {
        seen++;
        if (v == 3)
            break;
    }
    ck_assert_int_eq(seen, 3);
    /* The counter cannot have sent all 10 values (we took 3, the buffer
     * holds 4), so it is still running: the receiver may close too. */
    ck_assert_int_eq(int_chan_close(d), 0);
    int next = 4;
    CSP_RANGE_OF(int_chan, d, v)                /* what was buffered stays */
        ck_assert_int_eq(v, next++);            /* receivable, in order   */
    ck_assert_int_le(next, 8);
    csp_chan_release(c);
    int_chan_release(d);
}

START_TEST(test_range)
{
    RUN_MAIN(range_main, NULL);
}
END_TEST

/* The same typed channel from many tasks and a plain thread. */
static void adder(void *arg)
{
    int_chan *c = arg;
    for (int i = 0; i < 1000; i++)
        int_chan_send(c, 1);
    int_chan_release(c);
}

START_TEST(test_many_senders)
{
    int_chan *c = int_chan_make(16);
    for (int i = 0; i < 8; i++)
        ck_assert_int_eq(csp_go(adder, int_chan_retain(c)), 0);
    int v, sum = 0;
    for (int i = 0; i < 8000; i++) {
        ck_assert_int_eq(int_chan_recv(c, &v), 0);
        sum += v;
    }
    ck_assert_int_eq(sum, 8000);
    ck_assert_int_eq(csp_stop(), 0);
    int_chan_release(c);
}
END_TEST

static Suite *typed_suite(void)
{
    Suite *s = suite_create("typed");
    TCase *tc = tcase_create("typed");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_make_is_untyped_chan);
    tcase_add_test(tc, test_buffered_ops);
    tcase_add_test(tc, test_null_channel);
    tcase_add_test(tc, test_struct_values);
    tcase_add_test(tc, test_pointer_values);
    tcase_add_test(tc, test_select_cases);
    tcase_add_test(tc, test_from_timer);
    tcase_add_test(tc, test_range);
    tcase_add_test(tc, test_many_senders);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(typed_suite());
}
