/*
 * check_version.c - the version macros in csp.h, csp_version() and the
 * version configure.ac declares (PACKAGE_VERSION) all agree.
 */
#include "config.h"

#include <csp.h>
#include <stdio.h>
#include <string.h>

int main(void)
{
    char macros[64];
    snprintf(macros, sizeof macros, "%d.%d.%d", CSP_VERSION_MAJOR, CSP_VERSION_MINOR,
             CSP_VERSION_PATCH);
    if (strcmp(macros, PACKAGE_VERSION) != 0 || strcmp(csp_version(), PACKAGE_VERSION) != 0) {
        printf("FAIL: csp.h %s, csp_version() %s, configure.ac %s\n", macros, csp_version(),
               PACKAGE_VERSION);
        return 1;
    }
    printf("1 passed, 0 failed: version %s everywhere\n", macros);
    return 0;
}
