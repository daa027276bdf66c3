/*
 * typed_fail.c - must NOT compile: each case misuses a typed channel's
 * element type.  tests/check_typed_fail.sh compiles it once per case with
 * -DTYPED_FAIL_CASE=N (default 1) and incompatible pointer types made a
 * hard error, and checks that the compiler rejects it for that reason.
 * Case 0 is the control: the same file with every call right, which must
 * compile cleanly (it is also the header's -pedantic and C++ check).
 */
#include <csp.h>

#ifndef TYPED_FAIL_CASE
#define TYPED_FAIL_CASE 1
#endif

CSP_CHAN_TYPE(int_chan, int);
typedef struct point { double x, y; } point;
CSP_CHAN_TYPE(point_chan, point);

int typed_fail_probe(int_chan *ic, point_chan *pc);

int typed_fail_probe(int_chan *ic, point_chan *pc)
{
    int i = 0;
    double d = 0;
    long l = 0;
    point p = { 0, 0 };
    int r = 0;
    (void)d; (void)l;

    /* Always right: */
    r |= int_chan_send(ic, 1);
    r |= int_chan_recv(ic, &i);
    r |= point_chan_send(pc, p);
    r |= point_chan_recv(pc, &p);
    csp_case cs[2] = { int_chan_case_recv(ic, &i), point_chan_case_send(pc, &p) };
    r |= csp_select(cs, 2, CSP_NOWAIT);
    CSP_RANGE_OF(int_chan, ic, i)
        break;

#if TYPED_FAIL_CASE == 1
    r |= int_chan_recv(ic, &d);             /* double * for int * */
#elif TYPED_FAIL_CASE == 2
    r |= int_chan_send(pc, 1);              /* point_chan * for int_chan * */
#elif TYPED_FAIL_CASE == 3
    cs[0] = int_chan_case_recv(ic, &l);     /* long * for int * */
#elif TYPED_FAIL_CASE == 4
    CSP_RANGE_OF(int_chan, ic, d)           /* double loop variable */
        break;
#elif TYPED_FAIL_CASE == 5
    {
        point_chan *q = int_chan_make(1);   /* int_chan * into point_chan * */
        point_chan_release(q);
    }
#elif TYPED_FAIL_CASE == 6
    r |= point_chan_recv(pc, &i);           /* int * for point * */
#endif
    return r;
}
