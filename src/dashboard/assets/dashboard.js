// stratusd dashboard: confirmation dialogs, actions without a page load, and live updates
// from the server's event stream. The pages work without this script; it only adds to them.
// Text from the server's events is only ever set with textContent.
(function () {
  "use strict";

  var main = function () { return document.getElementById("main"); };

  function announce(text) {
    var region = document.getElementById("announce");
    if (!region || !text) return;
    region.textContent = "";
    window.setTimeout(function () { region.textContent = text; }, 50);
  }

  // Replaces the main region with the one of a page the server sent.
  function swapMain(html) {
    var doc = new DOMParser().parseFromString(html, "text/html");
    var fresh = doc.getElementById("main");
    var current = main();
    if (!fresh || !current) return null;
    current.innerHTML = fresh.innerHTML;
    ["data-live", "data-vm-id"].forEach(function (name) {
      if (fresh.hasAttribute(name)) current.setAttribute(name, fresh.getAttribute(name));
      else current.removeAttribute(name);
    });
    if (doc.title) document.title = doc.title;
    return current;
  }

  // Confirmation: links with data-dialog open their <dialog> instead of loading the
  // confirmation page.
  document.addEventListener("click", function (event) {
    var opener = event.target.closest("a[data-dialog]");
    if (opener) {
      var dialog = document.getElementById(opener.getAttribute("data-dialog"));
      if (dialog && typeof dialog.showModal === "function") {
        event.preventDefault();
        dialog.returnFocusTo = opener;
        dialog.showModal();
      }
      return;
    }
    var closer = event.target.closest("[data-close]");
    if (closer && closer.closest("dialog")) {
      event.preventDefault();
      closer.closest("dialog").close();
    }
  });

  document.addEventListener("close", function (event) {
    var dialog = event.target;
    if (dialog.returnFocusTo && document.contains(dialog.returnFocusTo)) dialog.returnFocusTo.focus();
  }, true);

  // Action forms are posted in the background; the answer's main region replaces this one.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.hasAttribute("data-async") || !window.fetch) return;
    event.preventDefault();
    var button = form.querySelector("button[type=submit]");
    if (button) button.disabled = true;
    var body = new URLSearchParams(new FormData(form));
    // getAttribute: the forms have a field named "action", which shadows form.action.
    fetch(form.getAttribute("action"), {
      method: "POST",
      body: body,
      credentials: "same-origin",
      headers: { "Content-Type": "application/x-www-form-urlencoded" }
    }).then(function (response) {
      return response.text().then(function (html) {
        var dialog = form.closest("dialog");
        if (dialog) dialog.close();
        if (response.redirected && response.url.indexOf("/dashboard/login") !== -1) {
          window.location.href = response.url;
          return;
        }
        var swapped = swapMain(html);
        if (response.redirected) {
          // The page itself, without the one-time notice in its query.
          history.replaceState(null, "", response.url.split("?")[0]);
        }
        if (swapped) {
          var notice = swapped.querySelector(".notice");
          if (notice) {
            notice.setAttribute("tabindex", "-1");
            notice.focus();
            announce(notice.textContent);
          }
        }
      });
    }).catch(function () {
      if (button) button.disabled = false;
      announce("The request failed; check your connection and try again.");
    });
  });

  // Live updates.
  var reloadTimer = null;
  var reloading = false;

  function busy() {
    if (document.querySelector("dialog[open]")) return true;
    var active = document.activeElement;
    return !!(active && active.closest && active.closest("form") &&
      /^(INPUT|SELECT|TEXTAREA)$/.test(active.tagName));
  }

  function scheduleReload(delay) {
    if (reloadTimer) return;
    reloadTimer = window.setTimeout(function () {
      reloadTimer = null;
      if (busy() || reloading) { scheduleReload(1000); return; }
      reloading = true;
      fetch(window.location.href, { credentials: "same-origin" }).then(function (response) {
        if (response.redirected && response.url.indexOf("/dashboard/login") !== -1) {
          window.location.href = response.url;
          return null;
        }
        return response.text();
      }).then(function (html) {
        if (html !== null && html !== undefined && !busy()) {
          var y = window.scrollY;
          swapMain(html);
          window.scrollTo(0, y);
        }
      }).finally(function () { reloading = false; });
    }, delay || 400);
  }

  function setBadge(cell, state, cls) {
    var badge = document.createElement("span");
    badge.className = "badge " + (/^[a-z]+$/.test(cls) ? cls : "");
    badge.textContent = state;
    cell.replaceChildren(badge);
  }

  function onVm(event) {
    var data;
    try { data = JSON.parse(event.data); } catch (e) { return; }
    var id = String(data.id);
    var shown = false;
    document.querySelectorAll("[data-vm]").forEach(function (row) {
      if (row.getAttribute("data-vm") !== id) return;
      shown = true;
      var state = row.querySelector("[data-field=state]");
      if (state) setBadge(state, data.state, data["class"]);
      var host = row.querySelector("[data-field=host]");
      if (host) host.textContent = data.host;
    });
    if (shown) announce("VM " + id + " is now " + data.state);
    var m = main();
    if (m && m.getAttribute("data-live") === "reload") {
      var only = m.getAttribute("data-vm-id");
      if (!only || only === id) scheduleReload();
    }
  }

  function start() {
    var m = main();
    if (!m || !m.hasAttribute("data-live") || !window.EventSource) return;
    var source = new EventSource("/dashboard/events");
    source.addEventListener("open", function () { document.body.setAttribute("data-events", "open"); });
    source.addEventListener("error", function () { document.body.setAttribute("data-events", "retrying"); });
    source.addEventListener("vm", onVm);
    source.addEventListener("host", function () {
      var m = main();
      if (m && m.getAttribute("data-live") === "reload" && !m.hasAttribute("data-vm-id")) scheduleReload();
    });
    source.addEventListener("refresh", function () {
      var m = main();
      if (m && m.hasAttribute("data-live")) scheduleReload(1500);
    });
    source.addEventListener("signedout", function () {
      source.close();
      window.location.href = "/dashboard/login?expired=1";
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
