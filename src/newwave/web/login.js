// The server sends a failed sign-in back here with ?failed=1.
if (new URLSearchParams(location.search).has("failed")) {
  document.getElementById("login-error").textContent = "Wrong user or password.";
}
