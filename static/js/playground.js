// The playground: the gateway's /v1/chat/completions streamed (SSE) into the page, with a
// key made for this tab (asked from the server, kept in memory only), then each exchange
// kept as a chat (chats.playground).
(() => {
  const root = document.getElementById("playground");
  if (!root) return;
  const $ = (id) => document.getElementById(id);
  const csrf = document.cookie.split("; ").find((c) => c.startsWith("csrftoken="))?.split("=")[1] ?? "";
  let key = null;
  let keyExpires = 0;
  let sessionId = root.dataset.session || null;
  const history = [...document.querySelectorAll("#pg-log .chat-turn")].map((turn) => ({
    role: turn.dataset.role,
    content: turn.querySelector(".chat-text").innerText,
  }));

  async function freshKey(force) {
    if (!force && key && Date.now() < keyExpires - 60_000) return key;
    const answer = await fetch(root.dataset.keyUrl, { method: "POST", headers: { "X-CSRFToken": csrf } });
    if (!answer.ok) throw new Error(`could not get a playground key (${answer.status})`);
    const made = await answer.json();
    key = made.key;
    keyExpires = Date.parse(made.expires_at);
    return key;
  }

  function turn(role, who) {
    $("pg-empty")?.remove();
    const box = document.createElement("div");
    box.className = `chat-turn chat-${role}`;
    box.dataset.role = role;
    box.innerHTML = '<div class="chat-who"></div><div class="chat-text"></div>';
    box.querySelector(".chat-who").textContent = who;
    $("pg-log").append(box);
    return box;
  }

  async function ask(messages, body) {
    for (const retry of [false, true]) {
      const answer = await fetch(`${root.dataset.api}/chat/completions`, {
        method: "POST",
        headers: { "Content-Type": "application/json", Authorization: `Bearer ${await freshKey(retry)}` },
        body: JSON.stringify({ ...body, messages, stream: true, stream_options: { include_usage: true } }),
      });
      if (answer.status === 401 && !retry) continue; // another tab took the key: a new one
      return answer;
    }
  }

  async function send(event) {
    event.preventDefault();
    const question = $("pg-input").value.trim();
    if (!question) return;
    const model = $("pg-model").value;
    const system = $("pg-system").value.trim();
    const body = { model, temperature: Number($("pg-temperature").value), max_tokens: Number($("pg-max-tokens").value) };
    const messages = [...(system ? [{ role: "system", content: system }] : []), ...history, { role: "user", content: question }];
    turn("user", "You").querySelector(".chat-text").textContent = question;
    $("pg-input").value = "";
    $("pg-send").disabled = true;
    $("pg-status").textContent = "Waiting for the first token…";
    const box = turn("assistant", model);
    const text = box.querySelector(".chat-text");
    const started = performance.now();
    let firstToken = null;
    let usage = null;
    try {
      const answer = await ask(messages, body);
      if (!answer.ok) {
        const refused = await answer.json().catch(() => ({}));
        throw new Error(refused.error?.message ?? `HTTP ${answer.status}`);
      }
      const reader = answer.body.pipeThrough(new TextDecoderStream()).getReader();
      let pending = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        pending += value;
        const lines = pending.split("\n");
        pending = lines.pop();
        for (const line of lines) {
          if (!line.startsWith("data:")) continue;
          const data = line.slice(5).trim();
          if (data === "[DONE]") continue;
          const chunk = JSON.parse(data);
          if (chunk.error) throw new Error(chunk.error.message);
          const delta = chunk.choices?.[0]?.delta?.content;
          if (delta) {
            if (firstToken === null) {
              firstToken = performance.now() - started;
              $("pg-status").textContent = "Streaming…";
            }
            text.textContent += delta;
          }
          if (chunk.usage) usage = chunk.usage;
        }
      }
      const latency = Math.round(performance.now() - started);
      const meta = document.createElement("div");
      meta.className = "chat-meta";
      const cost = usage?.cost != null ? `$${Number(usage.cost).toFixed(6)}` : "cost pending";
      meta.textContent = `${cost} · ${usage?.completion_tokens ?? "?"} tokens · first token ${Math.round(firstToken ?? latency)} ms · ${latency} ms`;
      box.append(meta);
      history.push({ role: "user", content: question }, { role: "assistant", content: text.textContent });
      $("pg-status").textContent = "";
      const saved = await fetch(root.dataset.saveUrl, {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
        body: JSON.stringify({ session_id: sessionId, model, system_prompt: system, question, answer: text.textContent, usage, latency_ms: latency }),
      });
      if (saved.ok) sessionId = (await saved.json()).session_id;
    } catch (error) {
      box.classList.add("chat-error");
      text.textContent = `The request failed: ${error.message}`;
      $("pg-status").textContent = "";
    } finally {
      $("pg-send").disabled = false;
      $("pg-input").focus();
    }
  }

  $("pg-form").addEventListener("submit", send);
  $("pg-input").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) $("pg-form").requestSubmit();
  });
})();
