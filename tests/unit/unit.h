/* unit.h - what every unit test program shares. */
#ifndef PEERDEX_UNIT_H
#define PEERDEX_UNIT_H

#include <check.h>
#include <stdlib.h>

/* Run every test of the suite (forked, as check does by default); the
 * program's exit status: EXIT_FAILURE if any test failed. */
static inline int run_suite(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

#endif
