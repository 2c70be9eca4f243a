// The browser checkout (DESIGN.md §10). This script draws the page and
// hands every decision to the sealing program (cmd/checkoutwasm): it
// fetches the program, checks its SHA-384 against the integrity the page
// names, instantiates it, and calls its orderseal.* methods. It logs
// nothing: no card number, address or key ever reaches the console.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const body = document.body;
  let form = null;       // the signed order form, as the program shows it
  let orderID = "";

  function message(text) {
    const m = $("message");
    m.textContent = text;
    m.hidden = !text;
    if (text) m.scrollIntoView({ block: "nearest" });
  }

  function engine(text, cls) {
    const e = $("engine");
    e.textContent = text;
    e.className = "engine " + (cls || "");
  }

  function b64(buf) {
    let s = "";
    new Uint8Array(buf).forEach((b) => { s += String.fromCharCode(b); });
    return btoa(s);
  }

  // load fetches the program, refuses it unless its SHA-384 is the one the
  // page was served with, and runs it. The fetch carries no integrity
  // option: Chromium then buffers and hashes the whole body again before
  // the response resolves, which doubled the time to the bytes here (and a
  // stream teed between compileStreaming and the hash was slower still).
  // The bytes are hashed and compiled at once (compiling runs none of
  // their code); nothing is instantiated before the hash matches.
  async function load() {
    const want = body.dataset.wasmIntegrity;
    const broken = (e) => new Error("the sealing program did not load (" + e.message + "); nothing can be sealed");
    let bytes;
    try {
      // The page's preload started this download while the scripts loaded.
      const resp = await fetch(body.dataset.wasm);
      if (!resp.ok) throw new Error("HTTP " + resp.status);
      bytes = await resp.arrayBuffer();
    } catch (e) {
      throw broken(e);
    }
    body.dataset.fetchedMs = String(Math.round(performance.now()));
    const compiled = WebAssembly.compile(bytes);
    compiled.catch(() => {}); // judged once the hash matched
    const digest = await crypto.subtle.digest("SHA-384", bytes);
    if ("sha384-" + b64(digest) !== want) {
      throw new Error("the sealing program failed its integrity check; nothing can be sealed");
    }
    body.dataset.checkedMs = String(Math.round(performance.now()));
    let module;
    try {
      module = await compiled;
    } catch (e) {
      throw broken(e);
    }
    body.dataset.compiledMs = String(Math.round(performance.now()));
    const go = new Go();
    const ready = new Promise((resolve) => document.addEventListener("orderseal-ready", resolve, { once: true }));
    const instance = await WebAssembly.instantiate(module, go.importObject);
    go.run(instance);
    await ready; // the program read the shop and vault from this page's body
    body.dataset.startedMs = String(Math.round(performance.now()));
  }

  function money(minor) {
    return (minor / 100).toFixed(2) + " " + (form ? form.currency : "");
  }

  // The key kept on this device: the key file sealed with AES-256-GCM under
  // a key PBKDF2-SHA-256 derives from her passphrase (600,000 rounds), in
  // this origin's IndexedDB. Neither the file nor the passphrase is stored.
  const kept = {
    rounds: 600000,
    db() {
      return new Promise((resolve, reject) => {
        const r = indexedDB.open("orderseal-checkout", 1);
        r.onupgradeneeded = () => r.result.createObjectStore("keys");
        r.onsuccess = () => resolve(r.result);
        r.onerror = () => reject(r.error);
      });
    },
    async op(mode, f) {
      const db = await kept.db();
      try {
        return await new Promise((resolve, reject) => {
          const req = f(db.transaction("keys", mode).objectStore("keys"));
          req.onsuccess = () => resolve(req.result);
          req.onerror = () => reject(req.error);
        });
      } finally {
        db.close();
      }
    },
    async wrapKey(pass, salt) {
      const base = await crypto.subtle.importKey("raw", new TextEncoder().encode(pass), "PBKDF2", false, ["deriveKey"]);
      return crypto.subtle.deriveKey({ name: "PBKDF2", hash: "SHA-256", salt, iterations: kept.rounds }, base,
        { name: "AES-GCM", length: 256 }, false, ["encrypt", "decrypt"]);
    },
    async save(pass, bytes) {
      const salt = crypto.getRandomValues(new Uint8Array(16)), iv = crypto.getRandomValues(new Uint8Array(12));
      const k = await kept.wrapKey(pass, salt);
      const sealed = await crypto.subtle.encrypt({ name: "AES-GCM", iv, additionalData: new TextEncoder().encode("orderseal checkout key v1") }, k, bytes);
      await kept.op("readwrite", (st) => st.put({ v: 1, salt, iv, sealed: new Uint8Array(sealed) }, "key"));
    },
    async load(pass) {
      const rec = await kept.op("readonly", (st) => st.get("key"));
      if (!rec) throw new Error("no key is kept on this device");
      const k = await kept.wrapKey(pass, rec.salt);
      try {
        return new Uint8Array(await crypto.subtle.decrypt({ name: "AES-GCM", iv: rec.iv, additionalData: new TextEncoder().encode("orderseal checkout key v1") }, k, rec.sealed));
      } catch (e) {
        throw new Error("wrong passphrase: the kept key does not open with it");
      }
    },
    has() { return kept.op("readonly", (st) => st.count("key")).then((n) => n > 0); },
    forget() { return kept.op("readwrite", (st) => st.delete("key")); },
  };

  async function showKept() {
    try {
      $("key-stored").hidden = !(await kept.has());
    } catch (e) {
      $("key-stored").hidden = true; // no IndexedDB (a private window): the file input alone
    }
  }

  async function openKept() {
    const pass = $("stored-pass").value;
    $("stored-pass").value = "";
    message("");
    let buf;
    try {
      buf = await kept.load(pass);
    } catch (e) {
      message(e.message);
      return;
    }
    await useKey(buf, "");
  }

  async function openKey(file) {
    const keep = $("keep-pass").value;
    $("keep-pass").value = "";
    if (keep && [...keep].length < 12) {
      message("a passphrase to keep the key has at least 12 characters; the key was not opened");
      $("key-file").value = "";
      return;
    }
    await useKey(new Uint8Array(await file.arrayBuffer()), keep);
  }

  // useKey hands the key file to the program and, when keep is a
  // passphrase, keeps it sealed on this device once the program took it.
  async function useKey(buf, keep) {
    message("");
    $("checkout").hidden = true;
    $("preview").hidden = true;
    $("key-who").hidden = true;
    delete body.dataset.labels;
    let key;
    try {
      try {
        key = JSON.parse(await orderseal.loadKey(buf));
        if (keep) {
          await kept.save(keep, buf);
          await showKept();
        }
      } finally {
        buf.fill(0);
      }
      $("key-who").textContent = key.identity + " · suite " + key.suite + (key.epoch ? ", epoch " + key.epoch : "");
      $("key-who").hidden = false;
      form = JSON.parse(await orderseal.form());
    } catch (e) {
      message(e.message);
      $("key-file").value = "";
      return;
    }
    drawForm();
    $("checkout").hidden = false;
    body.dataset.state = "form";
  }

  function drawForm() {
    const tb = $("catalog").tBodies[0];
    tb.replaceChildren();
    for (const p of form.catalog) {
      const tr = document.createElement("tr");
      const name = document.createElement("td");
      name.textContent = p.name;
      const price = document.createElement("td");
      price.className = "num";
      price.textContent = money(p.unit_price);
      const qty = document.createElement("td");
      qty.className = "num";
      const input = document.createElement("input");
      input.type = "number"; input.min = "0"; input.max = "10000"; input.value = "0";
      input.dataset.sku = p.sku; input.dataset.price = p.unit_price;
      input.setAttribute("aria-label", "quantity of " + p.name);
      input.addEventListener("input", total);
      qty.append(input);
      tr.append(name, price, qty);
      tb.append(tr);
    }
    total();
    const issuer = $("issuer");
    issuer.replaceChildren(...form.issuers.map((id) => new Option(id, id)));
    $("issuer-field").hidden = form.issuers.length < 2;
    labels();
  }

  function total() {
    let sum = 0;
    for (const input of $("catalog").querySelectorAll("input")) sum += (parseInt(input.value, 10) || 0) * Number(input.dataset.price);
    $("total").textContent = money(sum);
  }

  async function labels() {
    const sel = $("label");
    let list = [];
    let failed = false;
    if (body.dataset.vaultUrl) {
      try { list = JSON.parse(await orderseal.labels()); } catch (e) { message(e.message + "; type the address instead"); failed = true; }
    }
    sel.replaceChildren(...list.map((l) => new Option(l, l)));
    $("ship-saved-choice").hidden = list.length === 0;
    if (list.length > 0) { $("ship-saved").checked = true; }
    shipMode();
    body.dataset.labels = failed ? "failed" : String(list.length);
  }

  // shipMode shows the address form for a new address only; a saved one
  // leaves it hidden and disabled, so its required fields do not stop the form.
  function shipMode() {
    const saved = $("ship-saved").checked;
    $("address").hidden = saved;
    for (const input of $("address").querySelectorAll("input")) input.disabled = saved;
  }

  async function countries() {
    const list = JSON.parse(await orderseal.countries(""));
    const titled = (s) => s.toLowerCase().replace(/\b\w/g, (c) => c.toUpperCase());
    $("countries").replaceChildren(...list.map((c) => new Option(titled(c.name), c.country)));
  }

  async function countryForm() {
    const cc = $("country").value.trim().toUpperCase();
    if (cc.length !== 2) return;
    const f = JSON.parse(await orderseal.countries(cc));
    $("postcode-label").textContent = f.postcode_label + (f.postcode_required ? "" : " (optional)");
    $("postcode-hint").textContent = f.postcode_hint ? f.postcode_label + ": " + f.postcode_hint : "";
    $("region-field").hidden = !f.region_label;
    $("region-label").textContent = f.region_label;
    $("regions").replaceChildren(...(f.regions || []).map((r) => new Option(r, r)));
  }

  function request() {
    const items = [];
    for (const input of $("catalog").querySelectorAll("input")) {
      const qty = parseInt(input.value, 10) || 0;
      if (qty > 0) items.push({ sku: input.dataset.sku, qty });
    }
    const req = {
      items,
      buyer: { name: $("buyer-name").value.trim(), email: $("buyer-email").value.trim(), phone: $("buyer-phone").value.trim() },
      card: { number: $("card-number").value.trim(), expiry: $("card-expiry").value, cvc: $("card-cvc").value.trim() },
      issuer: $("issuer").value,
      recipient: {},
    };
    if ($("ship-saved").checked) {
      req.label = $("label").value;
    } else {
      req.address = {
        name: $("addr-name").value.trim() || req.buyer.name, line1: $("line1").value.trim(), line2: $("line2").value.trim(),
        city: $("city").value.trim(), region: $("region").value.trim(), postal_code: $("postcode").value.trim(),
        country: $("country").value.trim().toUpperCase(),
      };
      req.recipient = { name: req.address.name };
    }
    return req;
  }

  const roles = ["merchant", "issuer", "carrier"];

  async function review(ev) {
    ev.preventDefault();
    message("");
    let p;
    const button = $("review");
    button.disabled = true;
    try {
      p = JSON.parse(await orderseal.preview(JSON.stringify(request())));
    } catch (e) {
      message(e.message);
      return;
    } finally {
      button.disabled = false;
    }
    $("policy").textContent = "Policy " + (p.policy || "default") + " · total " + money(p.total) + ". No value is shown here: only who would read each field.";
    const tb = $("preview").querySelector("tbody");
    tb.replaceChildren();
    for (const row of p.rows) {
      const tr = document.createElement("tr");
      if (!row.Present) tr.className = "absent";
      const f = document.createElement("td");
      f.textContent = row.Field;
      tr.append(f);
      for (const r of roles) {
        const td = document.createElement("td");
        td.className = "mark";
        td.textContent = (row.Roles || []).includes(r) ? "✓" : "";
        tr.append(td);
      }
      if (!row.Present) {
        tr.lastChild.classList.add("empty");
        f.textContent += " (empty)";
      }
      tb.append(tr);
    }
    const v = $("vault-line");
    v.hidden = !p.vault;
    v.textContent = p.vault ? "Vault " + p.vault + ": the ship-to token, shop, carrier and order id — a grant for the carrier to print this one label." : "";
    $("checkout").hidden = true;
    $("preview").hidden = false;
    body.dataset.state = "preview";
    $("preview").scrollIntoView({ block: "start" });
  }

  async function place() {
    message("");
    $("place").disabled = true;
    let acc;
    try {
      acc = JSON.parse(await orderseal.submit());
    } catch (e) {
      message(e.message);
      $("place").disabled = false;
      return;
    }
    for (const id of ["card-number", "card-cvc"]) $(id).value = "";
    orderID = acc.order_id;
    $("preview").hidden = true;
    $("timeline").hidden = false;
    $("order-id").textContent = orderID + " · sealed under " + acc.suite + (acc.epoch ? ", epoch " + acc.epoch : "") + " in " + acc.seal_ms.toFixed(1) + " ms, in this page";
    body.dataset.order = orderID;
    body.dataset.sealMs = String(acc.seal_ms);
    body.dataset.state = "placed";
    poll(200);
  }

  const settled = ["declined", "shipped", "delivered", "failed"];

  async function poll(delay) {
    let st;
    try {
      st = JSON.parse(await orderseal.status(orderID));
    } catch (e) {
      message(e.message);
      setTimeout(() => poll(Math.min(delay * 2, 5000)), delay);
      return;
    }
    message("");
    const ol = $("events");
    ol.replaceChildren(...st.timeline.map((e, i) => {
      const li = document.createElement("li");
      if (e.state === "declined" || e.state === "failed") li.className = "bad";
      else if (i === st.timeline.length - 1 && settled.includes(st.state)) li.className = "final";
      const s = document.createElement("span"); s.className = "state"; s.textContent = e.state;
      const at = document.createElement("span"); at.className = "at"; at.textContent = new Date(e.at).toLocaleString();
      li.append(s, at);
      if (e.detail) { const d = document.createElement("span"); d.className = "detail"; d.textContent = e.detail; li.append(d); }
      return li;
    }));
    body.dataset.orderState = st.state;
    if (!settled.includes(st.state)) setTimeout(() => poll(Math.min(delay * 3 / 2, 1000)), delay);
  }

  document.addEventListener("DOMContentLoaded", async () => {
    $("key-file").addEventListener("change", (e) => { if (e.target.files[0]) openKey(e.target.files[0]); });
    $("stored-open").addEventListener("click", openKept);
    $("stored-forget").addEventListener("click", async () => { await kept.forget(); await showKept(); });
    $("checkout").addEventListener("submit", review);
    $("edit").addEventListener("click", () => { $("preview").hidden = true; $("checkout").hidden = false; });
    $("place").addEventListener("click", place);
    $("ship-saved").addEventListener("change", shipMode);
    $("ship-inline").addEventListener("change", shipMode);
    $("country").addEventListener("input", countryForm);
    try {
      await load();
    } catch (e) {
      engine(e.message, "bad");
      message(e.message);
      body.dataset.state = "broken";
      return;
    }
    body.dataset.readyMs = String(Math.round(performance.now()));
    engine("Ready to seal, in this page (" + body.dataset.readyMs + " ms).", "ready");
    $("key-file").disabled = false;
    // The country list only suggests codes while she types: drawn once the
    // program is ready, not before.
    countries().catch((e) => message(e.message));
    await showKept();
    body.dataset.state = "ready";
  });
})();
