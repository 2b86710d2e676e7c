/* SPDX-License-Identifier: MIT */
/* The confirmed position only moves over fully acknowledged prefixes. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "checkpoint/checkpoint.h"

static void in_order_prefix(void **state)
{
        struct wc_checkpoint *cp = wc_checkpoint_new(100);
        uint64_t a, b, c;
        (void)state;

        assert_non_null(cp);
        assert_int_equal(wc_checkpoint_add(cp, 200, 2, &a), 0);
        assert_int_equal(wc_checkpoint_add(cp, 300, 2, &b), 0);
        assert_int_equal(wc_checkpoint_add(cp, 400, 2, &c), 0);
        assert_int_equal(wc_checkpoint_in_flight(cp), 3);

        /* the later transactions are done, the first is not */
        assert_int_equal(wc_checkpoint_ack(cp, b), 0);
        assert_int_equal(wc_checkpoint_ack(cp, b), 0);
        assert_int_equal(wc_checkpoint_ack(cp, c), 0);
        assert_int_equal(wc_checkpoint_ack(cp, c), 0);
        assert_true(wc_checkpoint_confirmed(cp) == 100);

        /* one sink of two is not enough */
        assert_int_equal(wc_checkpoint_ack(cp, a), 0);
        assert_true(wc_checkpoint_confirmed(cp) == 100);
        assert_int_equal(wc_checkpoint_ack(cp, a), 0);
        assert_true(wc_checkpoint_confirmed(cp) == 400);
        assert_int_equal(wc_checkpoint_in_flight(cp), 0);

        /* done entries are gone */
        assert_int_equal(wc_checkpoint_ack(cp, a), -ENOENT);
        assert_int_equal(wc_checkpoint_ack(cp, 999), -ENOENT);
        wc_checkpoint_free(cp);
}

static void over_ack_is_an_error(void **state)
{
        struct wc_checkpoint *cp = wc_checkpoint_new(0);
        uint64_t a, b;
        (void)state;

        assert_int_equal(wc_checkpoint_add(cp, 10, 1, &a), 0);
        assert_int_equal(wc_checkpoint_add(cp, 20, 1, &b), 0);
        assert_int_equal(wc_checkpoint_ack(cp, b), 0);
        assert_int_equal(wc_checkpoint_ack(cp, b), -EINVAL);
        assert_true(wc_checkpoint_confirmed(cp) == 0);
        wc_checkpoint_free(cp);
}

static void zero_acks_and_positionless_entries(void **state)
{
        struct wc_checkpoint *cp = wc_checkpoint_new(50);
        uint64_t a, m, b;
        (void)state;

        /* no sink wants it: complete at once */
        assert_int_equal(wc_checkpoint_add(cp, 60, 0, &a), 0);
        assert_true(wc_checkpoint_confirmed(cp) == 60);
        /* a message outside a transaction holds the position back while
         * pending but never moves it itself */
        assert_int_equal(wc_checkpoint_add(cp, 0, 1, &m), 0);
        assert_int_equal(wc_checkpoint_add(cp, 70, 1, &b), 0);
        assert_int_equal(wc_checkpoint_ack(cp, b), 0);
        assert_true(wc_checkpoint_confirmed(cp) == 60);
        assert_int_equal(wc_checkpoint_ack(cp, m), 0);
        assert_true(wc_checkpoint_confirmed(cp) == 70);
        /* the position never goes back */
        assert_int_equal(wc_checkpoint_add(cp, 65, 0, &a), 0);
        assert_true(wc_checkpoint_confirmed(cp) == 70);
        wc_checkpoint_free(cp);
}

static void idle_advance_only_when_empty(void **state)
{
        struct wc_checkpoint *cp = wc_checkpoint_new(10);
        uint64_t a;
        (void)state;

        wc_checkpoint_idle_advance(cp, 20);
        assert_true(wc_checkpoint_confirmed(cp) == 20);
        wc_checkpoint_idle_advance(cp, 15); /* never back */
        assert_true(wc_checkpoint_confirmed(cp) == 20);
        assert_int_equal(wc_checkpoint_add(cp, 30, 1, &a), 0);
        wc_checkpoint_idle_advance(cp, 100);
        assert_true(wc_checkpoint_confirmed(cp) == 20);
        assert_int_equal(wc_checkpoint_ack(cp, a), 0);
        assert_true(wc_checkpoint_confirmed(cp) == 30);
        wc_checkpoint_idle_advance(cp, 100);
        assert_true(wc_checkpoint_confirmed(cp) == 100);
        wc_checkpoint_free(cp);
}

static void grows_past_ring_and_wraps(void **state)
{
        struct wc_checkpoint *cp = wc_checkpoint_new(0);
        uint64_t ids[1000];
        (void)state;

        /* wrap the ring a few times with a small window */
        for (int round = 0; round < 50; round++) {
                uint64_t id;
                assert_int_equal(
                    wc_checkpoint_add(cp, 1 + (wc_lsn)round, 1, &id), 0);
                assert_int_equal(wc_checkpoint_ack(cp, id), 0);
        }
        assert_true(wc_checkpoint_confirmed(cp) == 50);
        /* then many in flight at once: the ring grows */
        for (int i = 0; i < 1000; i++)
                assert_int_equal(
                    wc_checkpoint_add(cp, 100 + (wc_lsn)i, 1, &ids[i]), 0);
        assert_int_equal(wc_checkpoint_in_flight(cp), 1000);
        for (int i = 999; i >= 1; i--)
                assert_int_equal(wc_checkpoint_ack(cp, ids[i]), 0);
        assert_true(wc_checkpoint_confirmed(cp) == 50);
        assert_int_equal(wc_checkpoint_ack(cp, ids[0]), 0);
        assert_true(wc_checkpoint_confirmed(cp) == 1099);
        wc_checkpoint_free(cp);
        wc_checkpoint_free(NULL);
}

static void reset_forgets_in_flight(void **state)
{
        struct wc_checkpoint *cp = wc_checkpoint_new(10);
        uint64_t a, b;
        (void)state;

        assert_int_equal(wc_checkpoint_add(cp, 20, 1, &a), 0);
        wc_checkpoint_reset(cp);
        assert_int_equal(wc_checkpoint_in_flight(cp), 0);
        assert_true(wc_checkpoint_confirmed(cp) == 10);
        /* a late acknowledgement of a forgotten entry moves nothing */
        assert_int_equal(wc_checkpoint_ack(cp, a), -ENOENT);
        assert_int_equal(wc_checkpoint_add(cp, 30, 1, &b), 0);
        assert_true(b != a);
        assert_int_equal(wc_checkpoint_ack(cp, a), -ENOENT);
        assert_true(wc_checkpoint_confirmed(cp) == 10);
        assert_int_equal(wc_checkpoint_ack(cp, b), 0);
        assert_true(wc_checkpoint_confirmed(cp) == 30);
        wc_checkpoint_free(cp);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(in_order_prefix),
            cmocka_unit_test(over_ack_is_an_error),
            cmocka_unit_test(zero_acks_and_positionless_entries),
            cmocka_unit_test(idle_advance_only_when_empty),
            cmocka_unit_test(grows_past_ring_and_wraps),
            cmocka_unit_test(reset_forgets_in_flight),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
