/* Configuration keys of client authentication and token joins. */
#include <stdio.h>
#include <string.h>

#include "../proto/err.h"
#include "config.h"

int config_k_client_auth(struct config *c, const char *v, char *e, size_t l)
{
    if (!strcmp(v, "required"))
        c->client_auth = CONFIG_CLIENT_AUTH_REQUIRED;
    else if (!strcmp(v, "off"))
        c->client_auth = CONFIG_CLIENT_AUTH_OFF;
    else {
        snprintf(e, l, "\"%s\" is not required or off", v);
        return VC_EINVAL;
    }
    return 0;
}

int config_k_join_token(struct config *c, const char *v, char *e, size_t l)
{
    if (strncmp(v, "vc1-join:", 9) != 0) {
        snprintf(e, l, "\"%.40s\" is not a join token (vc1-join:..., from "
                 "virtcloud site invite)", v);
        return VC_EINVAL;
    }
    if (strlen(v) >= sizeof c->join_token) {
        snprintf(e, l, "token longer than %zu bytes",
                 sizeof c->join_token - 1);
        return VC_EINVAL;
    }
    snprintf(c->join_token, sizeof c->join_token, "%s", v);
    return 0;
}
