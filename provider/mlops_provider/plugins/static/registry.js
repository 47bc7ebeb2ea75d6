/* The registry pages inside Airflow's UI: follow Airflow's light/dark theme, and open Airflow's own
   pages (runs, DAGs) in Airflow rather than inside the registry's frame. No data, no requests. */
(function () {
  "use strict";
  var root = document.documentElement;
  var script = document.currentScript;
  var prefix = script ? new URL(script.src).pathname.replace(/\/static\/registry\.js$/, "") : "/mlops";
  var top = null;
  if (window.top !== window.self) {
    try {
      top = window.top.document ? window.top : null; // same origin: Airflow's UI
    } catch (e) {
      top = null;
    }
    root.classList.add("framed");
  }

  function theme() {
    if (top) {
      var c = top.document.documentElement.classList;
      if (c.contains("dark")) return "dark";
      if (c.contains("light")) return "light";
    }
    var stored = null;
    try {
      stored = window.localStorage.getItem("theme"); // where Airflow's UI keeps the user's choice
    } catch (e) {
      stored = null;
    }
    if (stored === "dark" || stored === "light") return stored;
    return window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
  }

  function apply() {
    var t = theme();
    if (root.getAttribute("data-theme") !== t) root.setAttribute("data-theme", t);
  }
  apply();
  if (top && window.MutationObserver) {
    new MutationObserver(apply).observe(top.document.documentElement, { attributes: true });
  }
  if (window.matchMedia) {
    var mq = window.matchMedia("(prefers-color-scheme: dark)");
    if (mq.addEventListener) mq.addEventListener("change", apply);
  }

  /* Navigate the whole window (Airflow's UI) to a same-origin path. Airflow's frame is sandboxed
     without top navigation, so the link is followed from Airflow's own document. */
  function openInAirflow(path) {
    if (!top) {
      window.location.assign(path);
      return;
    }
    try {
      var a = top.document.createElement("a");
      a.href = path;
      a.style.display = "none";
      top.document.body.appendChild(a);
      a.click();
      a.remove();
    } catch (e) {
      window.location.assign(path);
    }
  }
  window.mlopsOpenInAirflow = openInAirflow;

  function isAirflowPage(url) {
    return (
      url.origin === window.location.origin &&
      url.pathname !== prefix &&
      url.pathname.indexOf(prefix + "/") !== 0
    );
  }

  document.addEventListener("click", function (ev) {
    if (!top || ev.defaultPrevented || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) {
      return;
    }
    var a = ev.target && ev.target.closest ? ev.target.closest("a[href]") : null;
    if (!a || a.target || a.hasAttribute("download")) return;
    var url = new URL(a.href, window.location.href);
    if (!isAirflowPage(url)) return;
    ev.preventDefault();
    openInAirflow(url.pathname + url.search + url.hash);
  });

  /* The /open page: go to its target as soon as the page is parsed. */
  document.addEventListener("DOMContentLoaded", function () {
    var go = document.getElementById("open-in-airflow");
    if (go) {
      var url = new URL(go.href, window.location.href);
      if (url.origin === window.location.origin) openInAirflow(url.pathname + url.search + url.hash);
    }
  });
})();
