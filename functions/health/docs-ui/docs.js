// The /docs page: Swagger UI on this API's own /openapi.json. Served by the health function with
// the pinned swagger-ui-dist assets (functions/health/docs-ui/package-lock.json); nothing is
// loaded from anywhere else.
window.addEventListener("load", function () {
  var ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    // No call to the public validator service.
    validatorUrl: null,
    displayRequestDuration: true,
    tryItOutEnabled: true,
    // A successful sign-in (login or refresh) from this page authorises the calls that follow:
    // no copying the access token into "Authorize" by hand.
    responseInterceptor: function (res) {
      try {
        var path = new URL(res.url, window.location.href).pathname;
        if (res.ok && /\/api\/auth\/(login|refresh)$/.test(path)) {
          var body = res.body && typeof res.body === "object" ? res.body : JSON.parse(res.text || "{}");
          if (body.access_token) {
            ui.preauthorizeApiKey("bearer", body.access_token);
          }
        }
      } catch (e) {
        console.warn("docs: could not take the access token from the sign-in response", e);
      }
      return res;
    },
  });
  window.ui = ui;
});
