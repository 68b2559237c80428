/* The console's web maps: every element with data-map (JSON from app/geo/webmap.py) becomes a Leaflet
   map. Tiles only when configured; otherwise grids and points on the element's plain background.
   Text from residents (addresses) goes in as text, never as HTML. */
(function () {
  "use strict";
  var DONGGUAN = [23.02, 113.75];

  function popup(point) {
    var box = document.createElement("div");
    box.className = "map-popup";
    var head = document.createElement(point.href ? "a" : "strong");
    head.textContent = point.label;
    if (point.href) { head.href = point.href; head.style.fontWeight = "bold"; head.style.display = "block"; }
    box.appendChild(head);
    (point.lines || []).forEach(function (line) {
      var div = document.createElement("div");
      div.textContent = line;
      box.appendChild(div);
    });
    return box;
  }

  function draw(el) {
    var data = JSON.parse(el.getAttribute("data-map"));
    var tiles = data.tiles;
    var map = L.map(el, { scrollWheelZoom: false, attributionControl: !!(tiles && tiles.layers.length) });
    map.setView(DONGGUAN, 10);  // a view before any layer: vector layers added to a map without one throw
    map.attributionControl && map.attributionControl.setPrefix(false);
    map.createPane("points").style.zIndex = 620;  // points above the 镇街 names (markerPane, 600)
    if (tiles && tiles.layers.length) {
      // tiles are added once the view is final (below): no tiles fetched for the provisional view
    } else if (tiles && tiles.missing) {
      var note = document.createElement("div");
      note.className = "webmap-note";
      note.textContent = tiles.missing;
      el.appendChild(note);
    }
    var plain = !(tiles && tiles.layers.length);
    // layers are made first and added once the view is set: Leaflet clips vectors to a view it must have
    var focus = L.latLngBounds([]);
    var all = L.latLngBounds([]);
    var layers = [];
    (data.grids || []).forEach(function (feature) {
      var main = feature.properties.main;
      if (feature.properties.frame) {  // the city's outline: a frame, not something to point at
        layers.push(L.geoJSON(feature, { interactive: false, style: {
          color: "#6b7a8f", weight: 1.5, fillColor: "#ffffff", fillOpacity: plain ? 0.6 : 0 } }));
        return;
      }
      var layer = L.geoJSON(feature, {
        style: {
          color: main ? "#2f6b1a" : "#8aa37a", weight: main ? 2.5 : 1, dashArray: main ? null : "3 3",
          fillColor: main ? "#cfe0c3" : "#e4ecdc", fillOpacity: plain ? (main ? 0.7 : 0.5) : (main ? 0.15 : 0)
        }
      }).bindTooltip(feature.properties.label, { sticky: true });
      layers.push(layer);
      all.extend(layer.getBounds());
      if (main) focus.extend(layer.getBounds());
    });
    (data.points || []).forEach(function (point, i) {
      var marker = L.circleMarker([point.lat, point.lng], {
        radius: point.radius || 7, color: "#ffffff", weight: 2, fillColor: point.colour, fillOpacity: 1, pane: "points"
      });
      marker.bindTooltip(point.label);
      if (point.href || (point.lines && point.lines.length)) marker.bindPopup(popup(point));
      layers.push(marker);
      all.extend([point.lat, point.lng]);
      if (data.focus === "all" || i === 0) focus.extend([point.lat, point.lng]);
    });
    if (plain) {
      (data.labels || []).forEach(function (town) {
        layers.push(L.marker([town.lat, town.lng], { interactive: false, keyboard: false,
          icon: L.divIcon({ className: "map-label", html: "<span></span>", iconSize: null }) }).on("add", function () {
          this.getElement().firstChild.textContent = town.label;  // text, never HTML
        }));
      });
    }
    var bounds = focus.isValid() ? focus : all;
    if (bounds.isValid()) map.fitBounds(bounds.pad(0.15), { maxZoom: 17, animate: false });
    else map.setView(DONGGUAN, 10);
    if (tiles && tiles.layers.length) {
      tiles.layers.forEach(function (url) {
        L.tileLayer(url, { subdomains: tiles.subdomains, maxZoom: 18, attribution: tiles.attribution }).addTo(map);
      });
    }
    layers.forEach(function (layer) { layer.addTo(map); });
    el.setAttribute("data-ready", "1");
  }

  function start() {
    if (typeof L === "undefined") return;
    document.querySelectorAll("[data-map]").forEach(function (el) {
      try { draw(el); } catch (err) { el.setAttribute("data-error", String(err)); if (window.console) console.error(err.stack || err); }
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
