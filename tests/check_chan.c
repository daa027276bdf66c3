/*
 * check_chan.c - channels: buffered and unbuffered send/receive, close,
 * try/until forms, len/cap, element sizes, reference counts.
 */
#include "testutil.h"

#include <string.h>

/* Buffered channels keep FIFO order and report len/cap. */
START_TEST(test_buffered_fifo)
{
    csp_chan *c = csp_chan_make(sizeof(int), 4);
    ck_assert_ptr_nonnull(c);
    ck_assert_uint_eq(csp_chan_cap(c), 4);
    ck_assert_uint_eq(csp_chan_elem_size(c), sizeof(int));
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(csp_send(c, &i), 0);
    ck_assert_uint_eq(csp_chan_len(c), 4);
    int v = 99;
    ck_assert_int_eq(csp_try_send(c, &v), EAGAIN);
    ck_assert_int_eq(csp_send_until(c, &v, csp_deadline(1000000)), ETIMEDOUT);
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(csp_recv(c, &v), 0);
        ck_assert_int_eq(v, i);
    }
    ck_assert_int_eq(csp_try_recv(c, &v), EAGAIN);
    ck_assert_int_eq(csp_recv_until(c, &v, 0), EAGAIN);
    ck_assert_int_eq(csp_recv_until(c, &v, 1), ETIMEDOUT);
    csp_chan_release(c);
}
END_TEST

/* After close, buffered values drain, then EPIPE with a zeroed value. */
START_TEST(test_close_drains)
{
    csp_chan *c = csp_chan_make(sizeof(int), 2);
    int v = 7;
    ck_assert_int_eq(csp_send(c, &v), 0);
    ck_assert_int_eq(csp_close(c), 0);
    ck_assert_int_eq(csp_close(c), EPIPE);
    ck_assert_int_eq(csp_send(c, &v), EPIPE);
    v = 0;
    ck_assert_int_eq(csp_recv(c, &v), 0);
    ck_assert_int_eq(v, 7);
    v = 5;
    ck_assert_int_eq(csp_recv(c, &v), EPIPE);
    ck_assert_int_eq(v, 0);
    csp_chan_release(c);
}
END_TEST

static void pinger(void *arg)
{
    csp_chan **ch = arg;
    int v;
    while (csp_recv(ch[0], &v) == 0) {
        v++;
        csp_send(ch[1], &v);
    }
}

static void pingpong_main(void *arg)
{
    (void)arg;
    csp_chan *ch[2] = { csp_chan_make(sizeof(int), 0), csp_chan_make(sizeof(int), 0) };
    ck_assert_int_eq(csp_go(pinger, ch), 0);
    int v = 0;
    for (int i = 0; i < 10000; i++) {
        ck_assert_int_eq(csp_send(ch[0], &v), 0);
        ck_assert_int_eq(csp_recv(ch[1], &v), 0);
    }
    ck_assert_int_eq(v, 10000);
    csp_close(ch[0]);
    csp_sleep(1000000);
    csp_chan_release(ch[0]);
    csp_chan_release(ch[1]);
}

/* Unbuffered ping-pong between two tasks delivers every value once. */
START_TEST(test_unbuffered_pingpong)
{
    RUN_MAIN(pingpong_main, NULL);
}
END_TEST

/* Bad arguments are reported, never crash. */
START_TEST(test_bad_args)
{
    int v = 0;
    ck_assert_int_eq(csp_send(NULL, &v), EINVAL);
    ck_assert_int_eq(csp_recv(NULL, &v), EINVAL);
    ck_assert_int_eq(csp_close(NULL), EINVAL);
    csp_chan *c = csp_chan_make(sizeof(int), 1);
    ck_assert_int_eq(csp_send(c, NULL), EINVAL);
    csp_chan_release(c);
    csp_chan_release(NULL);
    csp_chan *z = csp_chan_make(0, 1);
    ck_assert_int_eq(csp_send(z, NULL), 0);
    ck_assert_int_eq(csp_recv(z, NULL), 0);
    csp_chan_release(z);
}
END_TEST

static Suite *chan_suite(void)
{
    Suite *s = suite_create("chan");
    TCase *tc = tcase_create("basic");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_buffered_fifo);
    tcase_add_test(tc, test_close_drains);
    tcase_add_test(tc, test_unbuffered_pingpong);
    tcase_add_test(tc, test_bad_args);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(chan_suite());
}
